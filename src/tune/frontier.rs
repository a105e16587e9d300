//! The Pareto frontier of tuned candidates and the choice among them (pure).
//!
//! Three figures, all to be minimized: under-provisioned % (share of steps whose demand
//! exceeds the capacity in effect), spend (Mbps·h, or the cost with `--prices`) and
//! changes per proxy-day.

use serde::Serialize;

/// How one policy fared over one range: the figures `simulate --json` prints in its
/// `summary`, over the scalable proxies.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Point {
    pub under_provisioned_pct: f64,
    pub footprint_mbps_hours: f64,
    pub footprint_concurrent_hours: f64,
    /// With `--prices`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    pub changes: u64,
    pub proxy_days: f64,
    pub changes_per_proxy_day: f64,
    pub flapping: u64,
}

impl Point {
    /// What the frontier weighs as spend: the cost when priced, else Mbps·h.
    pub fn spend(&self) -> f64 {
        self.cost.unwrap_or(self.footprint_mbps_hours)
    }

    /// The three minimized figures: (under-provisioned %, spend, changes per proxy-day).
    pub fn axes(&self) -> [f64; 3] {
        [
            self.under_provisioned_pct,
            self.spend(),
            self.changes_per_proxy_day,
        ]
    }

    /// The figures dominance weighs: the three minimized ones and the flaps.
    pub fn figures(&self) -> [f64; 4] {
        let [u, s, c] = self.axes();
        [u, s, c, self.flapping as f64]
    }

    /// No worse on the three minimized figures and better on one (the search's ranks:
    /// flaps steer the choice, not the search).
    pub fn dominates_on_axes(&self, other: &Point) -> bool {
        let (a, b) = (self.axes(), other.axes());
        a.iter().zip(&b).all(|(x, y)| x <= y) && a.iter().zip(&b).any(|(x, y)| x < y)
    }

    /// No worse on every figure (flaps included) and better on one.
    pub fn dominates(&self, other: &Point) -> bool {
        let (a, b) = (self.figures(), other.figures());
        a.iter().zip(&b).all(|(x, y)| x <= y) && a.iter().zip(&b).any(|(x, y)| x < y)
    }
}

/// The indices of the non-dominated points (of points with equal figures, the first),
/// ordered by spend, then under-provisioning, then changes, then index.
pub fn frontier(points: &[Point]) -> Vec<usize> {
    let mut out: Vec<usize> = (0..points.len())
        .filter(|&i| {
            !points.iter().enumerate().any(|(j, q)| {
                q.dominates(&points[i]) || (j < i && q.figures() == points[i].figures())
            })
        })
        .collect();
    out.sort_by(|&a, &b| order(&points[a], &points[b]).then(a.cmp(&b)));
    out
}

fn order(a: &Point, b: &Point) -> std::cmp::Ordering {
    let (x, y) = (a.axes(), b.axes());
    x[1].total_cmp(&y[1])
        .then(x[0].total_cmp(&y[0]))
        .then(x[2].total_cmp(&y[2]))
}

/// Non-dominated sorting on the three minimized figures: 0 for their frontier, 1 for the
/// frontier of the rest, and so on (the search's pruning).
pub fn ranks(points: &[Point]) -> Vec<usize> {
    let mut rank = vec![usize::MAX; points.len()];
    let mut left: Vec<usize> = (0..points.len()).collect();
    let mut r = 0;
    while !left.is_empty() {
        let front: Vec<usize> = left
            .iter()
            .copied()
            .filter(|&i| {
                !left
                    .iter()
                    .any(|&j| points[j].dominates_on_axes(&points[i]))
            })
            .collect();
        for &i in &front {
            rank[i] = r;
        }
        left.retain(|i| !front.contains(i));
        r += 1;
    }
    rank
}

/// Which way the recommendation leans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// The least spend with under-provisioning no worse than the current policy's (and,
    /// where some point allows it, no more flaps).
    Balanced,
    /// The least spend with under-provisioning at most 1 point above the current policy's.
    Cost,
    /// The least under-provisioning with spend at most 10% above the current policy's.
    Service,
}

/// `cost`: how much more under-provisioning (percentage points) than the current policy
/// is accepted for a lower spend.
pub const COST_UNDER_SLACK_POINTS: f64 = 1.0;
/// `service`: how much more spend than the current policy is accepted (ratio).
pub const SERVICE_SPEND_SLACK: f64 = 1.10;

impl Objective {
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Balanced => "balanced",
            Objective::Cost => "cost",
            Objective::Service => "service",
        }
    }

    /// Whether `p` meets this objective's constraints, given the current policy's figures.
    pub fn admits(self, p: &Point, current: &Point, budget_changes: f64) -> bool {
        if p.changes_per_proxy_day > budget_changes {
            return false;
        }
        let eps = 1e-9;
        match self {
            Objective::Balanced => p.under_provisioned_pct <= current.under_provisioned_pct + eps,
            Objective::Cost => {
                p.under_provisioned_pct
                    <= current.under_provisioned_pct + COST_UNDER_SLACK_POINTS + eps
            }
            Objective::Service => p.spend() <= current.spend() * SERVICE_SPEND_SLACK + eps,
        }
    }

    /// The sort key among admitted points (lower is better): what the objective minimizes
    /// first, then the other figures.
    pub fn key(self, p: &Point) -> [f64; 3] {
        let [under, spend, changes] = p.axes();
        match self {
            Objective::Balanced | Objective::Cost => [spend, under, changes],
            Objective::Service => [under, spend, changes],
        }
    }

    /// A total order for pruning and choosing: admitted points first, by [`Self::key`];
    /// then the points the objective would admit with the change budget raised to the
    /// current policy's own changes (no worse than now: the current policy is one of
    /// them), the same way; then points within the change budget by under-provisioning,
    /// then the rest by changes. Tiers are 0, 2, 4, 5: [`Self::choice_key`] puts a
    /// flappier point of tier 0 or 2 one tier down.
    pub fn rank_key(self, p: &Point, current: &Point, budget_changes: f64) -> (u8, [f64; 3]) {
        let relaxed = budget_changes.max(current.changes_per_proxy_day);
        if self.admits(p, current, budget_changes) {
            (0, self.key(p))
        } else if self.admits(p, current, relaxed) {
            (2, self.key(p))
        } else if p.changes_per_proxy_day <= budget_changes {
            let [u, s, c] = p.axes();
            (4, [u, s, c])
        } else {
            let [u, s, c] = p.axes();
            (5, [c, u, s])
        }
    }

    /// The order of the final choice: [`Self::rank_key`], where within each of its first
    /// two tiers a point that flaps no more than allowed ([`Self::calm`]) comes first.
    /// (The search prunes by `rank_key` alone: flaps steer the choice, not the search.)
    pub fn choice_key(self, p: &Point, current: &Point, budget_changes: f64) -> (u8, [f64; 3]) {
        let (tier, key) = self.rank_key(p, current, budget_changes);
        let restless = u8::from(tier < 4 && !self.calm(p, current));
        (tier + restless, key)
    }

    /// `balanced` also asks for no more flaps than the current policy (preferred, after
    /// the change budget); the other objectives do not weigh flaps.
    pub fn calm(self, p: &Point, current: &Point) -> bool {
        self != Objective::Balanced || p.flapping <= current.flapping
    }
}

/// The recommended point and whether it met the objective's constraints.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub index: usize,
    /// False when no point met them: then the best by the objective among the points
    /// with no more changes than the current policy (the budget cannot be met, so not
    /// worse than now); failing that, the point within the change budget with the least
    /// under-provisioning, or, if none is within it, the one with the fewest changes.
    pub constraints_met: bool,
}

/// Chooses among `points`: the best by [`Objective::choice_key`], or a near tie of it
/// that changes fewer keys (`changed[i]`: keys point `i` changes; missing counts as
/// many), which the frontier may dominate by that hair.
pub fn choose(
    points: &[Point],
    current: &Point,
    objective: Objective,
    budget_changes: f64,
    changed: &[usize],
) -> Option<Choice> {
    let key = |i: usize| objective.choice_key(&points[i], current, budget_changes);
    let best = (0..points.len()).min_by(|&a, &b| cmp_key(key(a), key(b)).then(a.cmp(&b)))?;
    // A near tie goes to the point that changes the fewest keys of the current policy,
    // even one the frontier dominates by a hair: an in-sample edge of a percent is mostly
    // noise, and each key moved is a chance to fit the past rather than the traffic
    // (issue 14's test: 11 of 11 seeds beat Autopilot out of sample with it, 6 of 11
    // without, and as many when only frontier points may win the tie).
    let (tier, k) = key(best);
    let near = |i: usize| {
        let (t, ki) = key(i);
        t == tier && ki[0] <= k[0] + NEAR_TIE * k[0].abs()
    };
    let steps = |i: usize| changed.get(i).copied().unwrap_or(usize::MAX);
    let pick = (0..points.len())
        .filter(|&i| near(i))
        .min_by(|&a, &b| {
            steps(a)
                .cmp(&steps(b))
                .then(cmp_key(key(a), key(b)))
                .then(a.cmp(&b))
        })
        .unwrap_or(best);
    Some(Choice {
        index: pick,
        constraints_met: objective.admits(&points[pick], current, budget_changes)
            && objective.calm(&points[pick], current),
    })
}

/// How close (relative, on what the objective minimizes first) to the best point another
/// point must be for [`choose`] to prefer it for changing fewer keys.
pub const NEAR_TIE: f64 = 0.01;

pub fn cmp_key(a: (u8, [f64; 3]), b: (u8, [f64; 3])) -> std::cmp::Ordering {
    a.0.cmp(&b.0)
        .then(a.1[0].total_cmp(&b.1[0]))
        .then(a.1[1].total_cmp(&b.1[1]))
        .then(a.1[2].total_cmp(&b.1[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(under: f64, spend: f64, changes: f64) -> Point {
        Point {
            under_provisioned_pct: under,
            footprint_mbps_hours: spend,
            changes_per_proxy_day: changes,
            ..Point::default()
        }
    }

    #[test]
    fn the_frontier_keeps_exactly_the_non_dominated_points() {
        // (points, expected frontier in spend order)
        let cases: Vec<(Vec<Point>, Vec<usize>)> = vec![
            (vec![], vec![]),
            (vec![p(1.0, 10.0, 1.0)], vec![0]),
            // 1 dominates 0; 2 trades under for spend.
            (
                vec![p(2.0, 10.0, 1.0), p(1.0, 10.0, 1.0), p(3.0, 5.0, 1.0)],
                vec![2, 1],
            ),
            // Equal figures: the first only.
            (vec![p(1.0, 1.0, 1.0), p(1.0, 1.0, 1.0)], vec![0]),
            // Changes alone keep a point on the frontier.
            (
                vec![p(1.0, 10.0, 5.0), p(1.0, 11.0, 2.0), p(1.0, 12.0, 2.0)],
                vec![0, 1],
            ),
        ];
        for (points, want) in cases {
            let got = frontier(&points);
            assert_eq!(got, want, "{points:?}");
            for &i in &got {
                assert!(!points.iter().any(|q| q.dominates(&points[i])));
            }
        }
    }

    #[test]
    fn ranks_peel_fronts() {
        let pts = [
            p(1.0, 1.0, 1.0),
            p(2.0, 2.0, 2.0),
            p(3.0, 3.0, 3.0),
            p(0.5, 5.0, 1.0),
        ];
        assert_eq!(ranks(&pts), vec![0, 1, 2, 0]);
    }

    #[test]
    fn choices_follow_the_objective_and_the_change_budget() {
        let current = p(2.0, 100.0, 4.0);
        let points = vec![
            current.clone(),    // 0
            p(1.9, 80.0, 6.0),  // 1: cheaper, as safe, more changes
            p(2.5, 60.0, 3.0),  // 2: cheapest, a little less safe
            p(0.5, 95.0, 3.0),  // 3: safer and cheaper than the current
            p(0.1, 200.0, 3.0), // 4: safest of all, far dearer
            p(1.0, 50.0, 20.0), // 5: cheap and safe but flaps
        ];
        // (objective, budget, want index, constraints met)
        let cases = [
            (Objective::Balanced, 10.0, 1, true),
            (Objective::Balanced, 5.0, 3, true),
            (Objective::Balanced, 30.0, 5, true),
            (Objective::Cost, 5.0, 2, true),
            (Objective::Service, 10.0, 3, true),
            (Objective::Service, 30.0, 3, true),
            // Nothing within 1 change a day: the cheapest of those as safe as the current
            // policy with no more changes than it (not the safest at twice the spend).
            (Objective::Balanced, 1.0, 3, false),
        ];
        for (objective, budget, want, met) in cases {
            let c = choose(&points, &current, objective, budget, &[]).unwrap();
            assert_eq!(
                (c.index, c.constraints_met),
                (want, met),
                "{objective:?} {budget}"
            );
            assert!(points[c.index].changes_per_proxy_day <= budget || !met);
            assert!(frontier(&points).contains(&c.index));
        }
        // `balanced` prefers no more flaps than the current policy: the calm point over
        // a cheaper one that flaps more (both within the budget); `cost` does not weigh
        // flaps. All three are on the frontier (cheaper, calmer, fewer changes).
        let flaps = |mut q: Point, n: u64| {
            q.flapping = n;
            q
        };
        let current = flaps(p(2.0, 100.0, 4.0), 10);
        let points = vec![
            current.clone(),
            flaps(p(1.9, 80.0, 6.0), 20),
            flaps(p(1.9, 90.0, 6.0), 8),
        ];
        let c = choose(&points, &current, Objective::Balanced, 10.0, &[]).unwrap();
        assert_eq!((c.index, c.constraints_met), (2, true));
        let c = choose(&points, &current, Objective::Cost, 10.0, &[]).unwrap();
        assert_eq!(c.index, 1);
        assert_eq!(frontier(&points), vec![1, 2, 0]);
        // Without the current policy among the points and nothing within the relaxed
        // budget either: the least under-provisioning within the budget, then the fewest
        // changes.
        let points = vec![p(1.0, 10.0, 9.0), p(3.0, 5.0, 2.0), p(0.5, 50.0, 8.0)];
        let current = p(0.2, 100.0, 4.0);
        let c = choose(&points, &current, Objective::Balanced, 3.0, &[]).unwrap();
        assert_eq!((c.index, c.constraints_met), (1, false));
        let c = choose(&points, &current, Objective::Balanced, 1.0, &[]).unwrap();
        assert_eq!((c.index, c.constraints_met), (1, false));
    }

    #[test]
    fn a_near_tie_goes_to_the_point_that_changes_fewer_keys() {
        let current = p(2.0, 100.0, 4.0);
        let points = vec![
            current.clone(),
            p(1.9, 90.0, 4.0),  // the best: 5 keys changed
            p(1.9, 90.8, 4.5),  // within 1 % of its spend, 2 keys (dominated by 1)
            p(1.9, 90.5, 4.0),  // within 1 %, 3 keys
            p(1.9, 91.0, 4.0),  // 1.1 % more: not a tie, 1 key
            p(2.5, 90.1, 4.0),  // more under-provisioned than now: not admitted, 1 key
            p(1.9, 90.2, 12.0), // over the change budget, 1 key
        ];
        let changed = [0, 5, 2, 3, 1, 1, 1];
        // (objective's picks) with the counts, without them (the best by the objective)
        let c = choose(&points, &current, Objective::Balanced, 10.0, &changed).unwrap();
        assert_eq!((c.index, c.constraints_met), (2, true));
        assert!(
            !frontier(&points).contains(&2),
            "a dominated point may win the tie"
        );
        let c = choose(&points, &current, Objective::Balanced, 10.0, &[]).unwrap();
        assert_eq!(c.index, 1);
        // Equal keys changed: the better by the objective.
        let c = choose(
            &points,
            &current,
            Objective::Balanced,
            10.0,
            &[0, 3, 3, 3, 1, 1, 1],
        )
        .unwrap();
        assert_eq!(c.index, 1);
        // `service` ties on under-provisioning (exactly equal here): the fewest keys.
        let c = choose(&points, &current, Objective::Service, 10.0, &changed).unwrap();
        assert_eq!(c.index, 4);
    }
}
