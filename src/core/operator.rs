//! Operators' manual changes (issue 12): a proxy whose values differ from what the engine
//! last applied or saw was changed by someone else (the console, `tccli`, a script). The
//! change is logged once (`observed.manual_change`, from → to) and the proxy is held for
//! the policy's `manual_hold`, so the engine does not undo it at the next pass.
//!
//! Both steps run inside [`decide`](super::decide), so the daemon and the simulation get
//! them: [`observe`] right after the guard (a proxy that is ADJUSTING, a change in
//! progress, is not compared), [`hold`] after stage 10. The engine keeps `last_known`
//! current: `decide` sets it to the target of a change it makes, and a change that is not
//! made (paused, held, rejected, dry run) puts it back to the values decided from.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    ControllerState, Decision, Dim, ManualChange, OperatorState, Reason, ReasonCode, Verdict,
};
use crate::time::{Timestamp, format_duration};

/// A hold that lasts until an operator resumes the proxy.
pub const FOREVER: Timestamp = Timestamp(i64::MAX);

/// The policy's `manual_hold`: how long an operator's change holds the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManualHold {
    /// `"0"`: the change is logged, nothing is held.
    Off,
    For(Duration),
    /// `"forever"`: until `resume`.
    Forever,
}

impl Default for ManualHold {
    fn default() -> Self {
        ManualHold::For(Duration::from_secs(3600))
    }
}

impl ManualHold {
    /// When a hold started at `now` ends (None: no hold).
    pub fn until(self, now: Timestamp) -> Option<Timestamp> {
        match self {
            ManualHold::Off => None,
            ManualHold::For(d) if d.is_zero() => None,
            ManualHold::For(d) => Some(now + d),
            ManualHold::Forever => Some(FOREVER),
        }
    }
}

/// The cooldown stamps of a state, (last_up, last_down) per dimension: what a change not
/// made gives back.
pub type Stamps = [(Option<Timestamp>, Option<Timestamp>); 2];

pub fn stamps(st: &ControllerState) -> Stamps {
    Dim::ALL.map(|dim| {
        let d = st.dim(dim);
        (d.last_up, d.last_down)
    })
}

/// "until 2026-12-07T01:00:00Z", or "until resumed".
pub fn until_text(until: Timestamp) -> String {
    if until == FOREVER {
        "until resumed".to_string()
    } else {
        format!("until {until}")
    }
}

fn values_text((bw, cc): (u32, u32)) -> String {
    format!("{bw} Mbps / {cc} x10k conns")
}

/// Compares the proxy's values with the last known ones: a difference is an operator's
/// change (a reason, and a hold per the policy). Ends a hold whose time is over. Leaves
/// `last_known` at the values seen.
pub fn observe(
    manual_hold: ManualHold,
    seen: (u32, u32),
    op: &mut OperatorState,
    now: Timestamp,
    reasons: &mut Vec<Reason>,
) {
    if op.manual_hold_until.is_some_and(|u| now >= u) {
        op.manual_hold_until = None;
        op.manual_change = None;
    }
    if let Some(known) = op.last_known
        && known != seen
    {
        // A hold already running is never shortened by a newer change.
        let until = manual_hold.until(now).max(op.manual_hold_until);
        let hold = match until {
            Some(u) => format!("holding the proxy {}", until_text(u)),
            None => "manual_hold is 0: not held".to_string(),
        };
        reasons.push(Reason::new(
            ReasonCode::ObservedManualChange,
            None,
            format!(
                "the proxy changed outside the autoscaler: {} → {}; {hold}",
                values_text(known),
                values_text(seen)
            ),
        ));
        op.manual_hold_until = until;
        op.manual_change = until.map(|_| ManualChange {
            at: now,
            from: known,
            to: seen,
        });
    }
    op.last_known = Some(seen);
}

/// Holds a change while an operator's hold lasts. A scale-up whose reasons include
/// `data.saturated` goes through when `allows_saturation` (and moves nothing down).
pub fn hold(allows_saturation: bool, d: &mut Decision, before: &Stamps, now: Timestamp) {
    if d.verdict != Verdict::Change {
        return;
    }
    let op = &d.next_state.operator;
    let Some(until) = op.manual_hold_until.filter(|&u| now < u) else {
        return;
    };
    let change = op.manual_change;
    let down = d.bandwidth_to < d.bandwidth_from || d.concurrent_to < d.concurrent_from;
    let saturated = d
        .reasons
        .iter()
        .any(|r| r.code == ReasonCode::DataSaturated);
    if allows_saturation && saturated && !down {
        d.reasons.push(Reason::new(
            ReasonCode::ObservedManualChange,
            None,
            format!(
                "a manual hold is in force {}, but demand is saturated and \
                 manual_hold_allows_saturation = true: scaling up",
                until_text(until)
            ),
        ));
        return;
    }
    let what = match change {
        Some(c) => format!(
            "an operator changed the proxy at {} ({} → {})",
            c.at,
            values_text(c.from),
            values_text(c.to)
        ),
        None => "an operator changed the proxy".to_string(),
    };
    hold_change(
        d,
        before,
        ReasonCode::ObservedManualChange,
        format!("{what}: manual hold {}, not changing it", until_text(until)),
    );
}

/// Turns a change into a hold: targets back to the current values, the change's cooldown
/// stamps given back (`before`), `last_known` at the current values, the `scale.*`
/// reasons replaced by `code` with `why`.
pub fn hold_change(d: &mut Decision, before: &Stamps, code: ReasonCode, why: String) {
    d.verdict = Verdict::Hold;
    d.direction = None;
    d.bandwidth_to = d.bandwidth_from;
    d.concurrent_to = d.concurrent_from;
    d.bandwidth.target = d.bandwidth_from;
    d.concurrent.target = d.concurrent_from;
    for (dim, (up, down)) in Dim::ALL.into_iter().zip(before.iter().copied()) {
        let st = d.next_state.dim_mut(dim);
        st.last_up = up;
        st.last_down = down;
        // A change not made reverses nothing.
        let t = d.time;
        st.reversals.retain(|&r| r != t);
    }
    d.next_state.operator.last_known = Some((d.bandwidth_from, d.concurrent_from));
    d.reasons
        .retain(|r| !matches!(r.code, ReasonCode::ScaleUp | ReasonCode::ScaleDown));
    d.reasons.push(Reason::new(code, None, why));
}

/// Whether `d` saw an operator's change: the values it started from differ from the last
/// known ones and the change was reported (a guard that stopped the decision reports none).
pub fn detected(before: &OperatorState, d: &Decision) -> bool {
    before
        .last_known
        .is_some_and(|k| k != (d.bandwidth_from, d.concurrent_from))
        && d.reasons
            .iter()
            .any(|r| r.code == ReasonCode::ObservedManualChange)
}

/// Whether a manual hold is in force at `now`.
pub fn held(op: &OperatorState, now: Timestamp) -> bool {
    op.manual_hold_until.is_some_and(|u| now < u)
}

/// Ends a manual hold (`resume`). True if there was one.
pub fn end_hold(op: &mut OperatorState) -> bool {
    let had = op.manual_hold_until.is_some();
    op.manual_hold_until = None;
    op.manual_change = None;
    had
}

/// For `Duration` text in messages.
pub fn hold_text(h: ManualHold) -> String {
    match h {
        ManualHold::Off => "0".into(),
        ManualHold::For(d) => format_duration(d),
        ManualHold::Forever => "forever".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::decide;
    use crate::core::fixtures::{ladder, observe as obs, policy, proxy};

    const T0: Timestamp = Timestamp::from_secs(1_795_939_200);

    fn seasoned(last_known: Option<(u32, u32)>) -> ControllerState {
        let mut st = ControllerState::default();
        st.bandwidth.observed_since = Some(T0 - Duration::from_secs(86_400));
        st.concurrent.observed_since = Some(T0 - Duration::from_secs(86_400));
        st.operator.last_known = last_known;
        st
    }

    fn codes(d: &Decision) -> Vec<String> {
        d.reason_codes()
    }

    #[test]
    fn manual_change_table() {
        let h = Duration::from_secs(3600);
        // (last known, proxy bw, demand, manual_hold, expect detected, expect verdict,
        //  expect hold until)
        let rows = [
            // First sight: nothing to compare with; the change goes out.
            (
                None,
                10,
                200.0,
                ManualHold::default(),
                false,
                Verdict::Change,
                None,
            ),
            // As last applied: not manual.
            (
                Some((10, 2)),
                10,
                200.0,
                ManualHold::default(),
                false,
                Verdict::Change,
                None,
            ),
            // Someone moved 10 → 20: logged, held for 1h although demand asks for more.
            (
                Some((10, 2)),
                20,
                200.0,
                ManualHold::default(),
                true,
                Verdict::Hold,
                Some(T0 + h),
            ),
            // ... and a scale-down is held too.
            (
                Some((10, 2)),
                200,
                5.0,
                ManualHold::default(),
                true,
                Verdict::Hold,
                Some(T0 + h),
            ),
            (
                Some((10, 2)),
                20,
                200.0,
                ManualHold::Forever,
                true,
                Verdict::Hold,
                Some(FOREVER),
            ),
            // manual_hold = 0: logged, not held.
            (
                Some((10, 2)),
                20,
                200.0,
                ManualHold::Off,
                true,
                Verdict::Change,
                None,
            ),
        ];
        for (known, bw, demand, mh, detected, verdict, until) in rows {
            let mut pol = policy();
            pol.manual_hold = mh;
            let st = seasoned(known);
            let d = decide(
                &pol,
                &proxy(bw, 2),
                Some(&ladder()),
                &obs(demand, 0.0, T0),
                &st,
                T0,
            );
            let what = format!("{known:?} {bw} {demand} {mh:?}");
            let n = codes(&d)
                .iter()
                .filter(|c| *c == "observed.manual_change")
                .count();
            assert_eq!(n >= 1, detected, "{what}: {:?}", codes(&d));
            assert_eq!(d.verdict, verdict, "{what}: {:?}", codes(&d));
            assert_eq!(d.next_state.operator.manual_hold_until, until, "{what}");
            let expect_known = if verdict == Verdict::Change {
                (d.bandwidth_to, d.concurrent_to)
            } else {
                (bw, 2)
            };
            assert_eq!(
                d.next_state.operator.last_known,
                Some(expect_known),
                "{what}"
            );
            if verdict == Verdict::Hold {
                assert!(!codes(&d).iter().any(|c| c.contains("scale.")), "{what}");
                assert_eq!(d.next_state.bandwidth.last_up, None, "no cooldown starts");
            }
            if detected {
                let sentence = d
                    .reasons
                    .iter()
                    .find(|r| r.code == ReasonCode::ObservedManualChange)
                    .unwrap()
                    .detail
                    .to_string();
                assert!(
                    sentence.contains(&format!("10 Mbps / 2 x10k conns → {bw} Mbps")),
                    "{sentence}"
                );
            }
        }
    }

    #[test]
    fn the_hold_lasts_its_time_then_scaling_resumes() {
        let pol = policy();
        let l = ladder();
        let st = seasoned(Some((10, 2)));
        // The operator's 20 is seen at T0, held for an hour.
        let d = decide(&pol, &proxy(20, 2), Some(&l), &obs(200.0, 0.0, T0), &st, T0);
        assert_eq!(d.verdict, Verdict::Hold);
        // Half an hour later: still held, detected no more (one record of the change).
        let t1 = T0 + Duration::from_secs(1800);
        let d1 = decide(
            &pol,
            &proxy(20, 2),
            Some(&l),
            &obs(200.0, 0.0, t1),
            &d.next_state,
            t1,
        );
        assert_eq!(d1.verdict, Verdict::Hold);
        let sentence = d1.reasons.last().unwrap().detail.to_string();
        assert!(sentence.contains("manual hold until"), "{sentence}");
        assert!(
            sentence.contains("10 Mbps / 2 x10k conns → 20 Mbps"),
            "{sentence}"
        );
        // After the hour: the change goes out and the hold is gone.
        let t2 = T0 + Duration::from_secs(3600);
        let d2 = decide(
            &pol,
            &proxy(20, 2),
            Some(&l),
            &obs(200.0, 0.0, t2),
            &d1.next_state,
            t2,
        );
        assert_eq!(d2.verdict, Verdict::Change, "{:?}", codes(&d2));
        assert_eq!(d2.next_state.operator.manual_hold_until, None);
    }

    #[test]
    fn a_saturated_scale_up_overrides_the_hold_only_when_allowed() {
        let l = ladder();
        // 200 Mbps seen on a 20 Mbps proxy is saturated (the saturation stage marks it);
        // 17 Mbps needs 50 too (17 / 0.7) but is below the saturation threshold.
        for (allowed, demand, expect) in [
            (false, 17.0, Verdict::Hold),
            (false, 200.0, Verdict::Hold),
            (true, 17.0, Verdict::Hold),
            (true, 200.0, Verdict::Change),
        ] {
            let mut pol = policy();
            pol.manual_hold_allows_saturation = allowed;
            let mut st = seasoned(Some((20, 2)));
            let open = st.clone();
            let unheld = decide(
                &pol,
                &proxy(20, 2),
                Some(&l),
                &obs(demand, 0.0, T0),
                &open,
                T0,
            );
            assert_eq!(unheld.verdict, Verdict::Change, "{:?}", codes(&unheld));
            assert_eq!(
                unheld
                    .reasons
                    .iter()
                    .any(|r| r.code == ReasonCode::DataSaturated),
                demand > 100.0,
                "{:?}",
                codes(&unheld)
            );
            st.operator.manual_hold_until = Some(T0 + Duration::from_secs(60));
            let d = decide(
                &pol,
                &proxy(20, 2),
                Some(&l),
                &obs(demand, 0.0, T0),
                &st,
                T0,
            );
            assert_eq!(
                d.verdict,
                expect,
                "allowed {allowed} demand {demand}: {:?}",
                codes(&d)
            );
        }
    }
}
