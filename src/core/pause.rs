//! The pause stage: an operator's pause turns a change in a paused direction into a hold.
//!
//! Applied after [`decide`](super::decide): the proxy is still evaluated (its stabilization
//! history and data streaks move on, so resuming acts on fresh state), but no change goes
//! out in a paused direction and no cooldown starts, because nothing was applied.

use serde::{Deserialize, Serialize};

use super::{ControllerState, Decision, Dim, Direction, Reason, ReasonCode, Verdict};

/// The directions an operator paused for one proxy (plain data, from the policy's static
/// key or the daemon's pause store).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Paused {
    pub up: bool,
    pub down: bool,
}

impl Paused {
    pub const NONE: Paused = Paused {
        up: false,
        down: false,
    };
    pub const BOTH: Paused = Paused {
        up: true,
        down: true,
    };
    pub fn covers(self, dir: Direction) -> bool {
        match dir {
            Direction::Up => self.up,
            Direction::Down => self.down,
        }
    }
    pub fn any(self) -> bool {
        self.up || self.down
    }
    /// Both pauses together (a static key and a run-time pause).
    pub fn union(self, other: Paused) -> Paused {
        Paused {
            up: self.up || other.up,
            down: self.down || other.down,
        }
    }
}

/// Turns `d` into a hold with `guard.paused` when it changes in a direction `paused`
/// covers. `before` is the controller state the decision started from: the cooldown
/// stamps of the change not made are taken back from it. `why` says who/why/until.
/// A change that moves one dimension up and the other down is held when either of its
/// moves is paused. Pure; never fails.
pub fn apply_pause(d: &mut Decision, before: &ControllerState, paused: Paused, why: String) {
    if d.verdict != Verdict::Change {
        return;
    }
    let up = d.bandwidth_to > d.bandwidth_from || d.concurrent_to > d.concurrent_from;
    let down = d.bandwidth_to < d.bandwidth_from || d.concurrent_to < d.concurrent_from;
    if !((up && paused.up) || (down && paused.down)) {
        return;
    }
    d.verdict = Verdict::Hold;
    d.direction = None;
    d.bandwidth_to = d.bandwidth_from;
    d.concurrent_to = d.concurrent_from;
    d.bandwidth.target = d.bandwidth_from;
    d.concurrent.target = d.concurrent_from;
    for dim in Dim::ALL {
        let was = before.dim(dim);
        let st = d.next_state.dim_mut(dim);
        st.last_up = was.last_up;
        st.last_down = was.last_down;
        // A change not made reverses nothing.
        let t = d.time;
        st.reversals.retain(|&r| r != t);
    }
    d.reasons
        .retain(|r| !matches!(r.code, ReasonCode::ScaleUp | ReasonCode::ScaleDown));
    d.reasons
        .push(Reason::new(ReasonCode::GuardPaused, None, why));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::core::fixtures::{ladder, observe, policy, proxy};
    use crate::core::{Direction, decide};
    use crate::time::Timestamp;

    const T0: Timestamp = Timestamp::from_secs(1_795_939_200);

    fn seasoned() -> ControllerState {
        let mut st = ControllerState::default();
        st.bandwidth.observed_since = Some(T0 - Duration::from_secs(86_400));
        st.concurrent.observed_since = Some(T0 - Duration::from_secs(86_400));
        st
    }

    fn paused_decision(bw: u32, demand: f64, paused: Paused) -> (Decision, Decision) {
        let st = seasoned();
        let d = decide(
            &policy(),
            &proxy(bw, 2),
            Some(&ladder()),
            &observe(demand, 0.0, T0),
            &st,
            T0,
        );
        let mut p = d.clone();
        apply_pause(&mut p, &st, paused, "paused by ops: migration".into());
        (d, p)
    }

    #[test]
    fn pause_table() {
        // (bandwidth, demand Mbps, paused, expect the unpaused direction, expect held)
        let up = Paused {
            up: true,
            down: false,
        };
        let down = Paused {
            up: false,
            down: true,
        };
        let rows = [
            (10, 200.0, up, Some(Direction::Up), true),
            (10, 200.0, down, Some(Direction::Up), false),
            (10, 200.0, Paused::BOTH, Some(Direction::Up), true),
            (10, 200.0, Paused::NONE, Some(Direction::Up), false),
        ];
        for (bw, demand, paused, dir, held) in rows {
            let (d, p) = paused_decision(bw, demand, paused);
            assert_eq!(d.direction, dir, "fixture moves {bw} at {demand}");
            if held {
                assert_eq!(p.verdict, Verdict::Hold);
                assert_eq!(p.bandwidth_to, p.bandwidth_from);
                assert_eq!(
                    p.reason_codes().last().map(String::as_str),
                    Some("guard.paused")
                );
                assert!(!p.reason_codes().iter().any(|c| c.starts_with("scale.")));
                assert_eq!(p.next_state.bandwidth.last_up, None, "no cooldown starts");
                // Still evaluated: the stabilization history moved on as without the pause.
                assert_eq!(
                    p.next_state.bandwidth.recommendations,
                    d.next_state.bandwidth.recommendations
                );
            } else {
                assert_eq!(p, d, "a pause in the other direction changes nothing");
            }
        }
    }

    #[test]
    fn the_policy_files_pause_holds_inside_decide() {
        let mut pol = policy();
        pol.paused = Paused {
            up: true,
            down: false,
        };
        let st = seasoned();
        let d = decide(
            &pol,
            &proxy(10, 2),
            Some(&ladder()),
            &observe(200.0, 0.0, T0),
            &st,
            T0,
        );
        assert_eq!(d.verdict, Verdict::Hold);
        assert!(d.reason_codes().contains(&"guard.paused".to_string()));
        assert_eq!(d.next_state.bandwidth.last_up, None);
    }

    proptest! {
        #[test]
        fn a_paused_direction_never_produces_a_change_in_it(
            bw_idx in 0usize..8,
            cc in 1u32..10,
            demand in 0.0f64..5_000.0,
            conns in 0.0f64..200_000.0,
            up in any::<bool>(),
            down in any::<bool>(),
            aged in any::<bool>(),
        ) {
            let l = ladder();
            let values = l.values(crate::core::Dim::Bandwidth);
            let bw = values[bw_idx % values.len()];
            let st = if aged { seasoned() } else { ControllerState::default() };
            let mut d = decide(&policy(), &proxy(bw, cc), Some(&l), &observe(demand, conns, T0), &st, T0);
            let paused = Paused { up, down };
            apply_pause(&mut d, &st, paused, "paused".into());
            if let Some(dir) = d.direction {
                prop_assert!(!paused.covers(dir));
            }
            if up {
                prop_assert!(d.bandwidth_to <= d.bandwidth_from && d.concurrent_to <= d.concurrent_from);
            }
            if down {
                prop_assert!(d.bandwidth_to >= d.bandwidth_from && d.concurrent_to >= d.concurrent_from);
            }
        }
    }
}
