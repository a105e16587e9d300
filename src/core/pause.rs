//! The pause stage: an operator's pause turns a change in a paused direction into a hold.
//!
//! Applied after [`decide`](super::decide): the proxy is still evaluated (its stabilization
//! history and data streaks move on, so resuming acts on fresh state), but no change goes
//! out in a paused direction and no cooldown starts, because nothing was applied.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

use super::operator::Stamps;
use super::{ControllerState, Decision, Direction, ReasonCode, Verdict};

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
    apply_pause_stamps(d, &super::operator::stamps(before), paused, why);
}

/// [`apply_pause`] with the cooldown stamps of the starting state (the replay reuses its
/// decision, so it keeps only these).
pub fn apply_pause_stamps(d: &mut Decision, before: &Stamps, paused: Paused, why: String) {
    if d.verdict != Verdict::Change {
        return;
    }
    let up = d.bandwidth_to > d.bandwidth_from || d.concurrent_to > d.concurrent_from;
    let down = d.bandwidth_to < d.bandwidth_from || d.concurrent_to < d.concurrent_from;
    if !((up && paused.up) || (down && paused.down)) {
        return;
    }
    super::operator::hold_change(d, before, ReasonCode::GuardPaused, why);
}

/// What a run-time pause covers: a whole policy, or one proxy (in whichever policy).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Policy(String),
    Proxy(String),
}

impl Scope {
    pub fn covers(&self, policy: &str, proxy: &str) -> bool {
        match self {
            Scope::Policy(p) => p == policy,
            Scope::Proxy(p) => p == proxy,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Policy(p) => write!(f, "policy {p}"),
            Scope::Proxy(p) => write!(f, "proxy {p}"),
        }
    }
}

/// `scale_up` / `scale_down`: the names of the directions in files, flags and JSON.
pub fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Up => "scale_up",
        Direction::Down => "scale_down",
    }
}

/// Parses a direction to pause: `up`, `down`, `both`, `scale_up`, `scale_down`.
pub fn parse_directions(s: &str) -> Result<Paused, String> {
    match s.trim() {
        "up" | "scale_up" => Ok(Paused {
            up: true,
            down: false,
        }),
        "down" | "scale_down" => Ok(Paused {
            up: false,
            down: true,
        }),
        "both" => Ok(Paused::BOTH),
        other => Err(format!(
            "`{other}` is not a direction: use up, down or both (or scale_up, scale_down)"
        )),
    }
}

impl Paused {
    /// The directions it covers, up first.
    pub fn directions(self) -> impl Iterator<Item = Direction> {
        [(self.up, Direction::Up), (self.down, Direction::Down)]
            .into_iter()
            .filter_map(|(on, d)| on.then_some(d))
    }
}

/// One run-time pause of one direction (`gaap-autoscaler pause`): plain data, kept by the
/// daemon in the decision log; time is a value (`until`), so an expired pause stops
/// applying by itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub scope: Scope,
    pub direction: Direction,
    pub since: Timestamp,
    /// None: until resumed.
    pub until: Option<Timestamp>,
    pub reason: String,
    /// Who paused (user@host, or `--by`).
    pub by: String,
}

impl Pause {
    /// In force at `now`: from `since` (a replayed schedule may start later) until `until`.
    pub fn active(&self, now: Timestamp) -> bool {
        self.since <= now && self.until.is_none_or(|u| now < u)
    }
    /// "scale_down paused for policy web by ops@host until 2026-12-07T01:00:00Z: migration"
    pub fn sentence(&self) -> String {
        let until = match self.until {
            Some(u) => format!(" until {u}"),
            None => " until resumed".to_string(),
        };
        let why = if self.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", self.reason)
        };
        format!(
            "{} paused for {} by {} since {}{until}{why}",
            direction_name(self.direction),
            self.scope,
            self.by,
            self.since
        )
    }
}

/// The directions the active pauses cover for (policy, proxy) at `now`, and the sentence
/// that says who paused them, why and until when.
pub fn paused_at(pauses: &[Pause], policy: &str, proxy: &str, now: Timestamp) -> (Paused, String) {
    let mut out = Paused::NONE;
    let mut why = Vec::new();
    for p in pauses
        .iter()
        .filter(|p| p.active(now) && p.scope.covers(policy, proxy))
    {
        match p.direction {
            Direction::Up => out.up = true,
            Direction::Down => out.down = true,
        }
        why.push(p.sentence());
    }
    (out, why.join("; "))
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

    #[test]
    fn run_time_pauses_apply_by_scope_and_until_they_expire() {
        let pause = |scope: Scope, direction, until: Option<i64>| Pause {
            scope,
            direction,
            since: T0,
            until: until.map(|s| T0 + Duration::from_secs(s as u64)),
            reason: "migration".into(),
            by: "ops@host".into(),
        };
        let pauses = vec![
            pause(Scope::Policy("web".into()), Direction::Down, Some(7200)),
            pause(Scope::Proxy("link-x".into()), Direction::Up, None),
        ];
        let at = |s: u64| T0 + Duration::from_secs(s);
        // (policy, proxy, at, expect up, expect down)
        let rows = [
            ("web", "link-a", at(0), false, true),
            ("web", "link-a", at(7199), false, true),
            ("web", "link-a", at(7200), false, false),
            ("web", "link-x", at(60), true, true),
            ("api", "link-x", at(86_400 * 30), true, false),
            ("api", "link-b", at(0), false, false),
        ];
        for (policy, proxy, now, up, down) in rows {
            let (p, why) = paused_at(&pauses, policy, proxy, now);
            assert_eq!(p, Paused { up, down }, "{policy} {proxy} {now}");
            assert_eq!(why.is_empty(), !p.any());
        }
        let (_, why) = paused_at(&pauses, "web", "link-a", T0);
        assert_eq!(
            why,
            "scale_down paused for policy web by ops@host since 2026-11-29T08:00:00Z until 2026-11-29T10:00:00Z: migration"
        );
        for (text, want) in [
            (
                "up",
                Ok(Paused {
                    up: true,
                    down: false,
                }),
            ),
            (
                "scale_down",
                Ok(Paused {
                    up: false,
                    down: true,
                }),
            ),
            ("both", Ok(Paused::BOTH)),
        ] {
            assert_eq!(parse_directions(text), want);
        }
        assert!(parse_directions("sideways").is_err());
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
