//! `tune`: search each policy's behavior and target keys over a history, with the same
//! replay as `simulate` (every candidate is a real [`crate::sim::replay`]), and recommend
//! a point of the Pareto frontier of under-provisioning, spend and changes.
//!
//! - [`space`]: the tunable keys, their grids, candidates → policies.
//! - [`frontier`]: dominance, the frontier, the objectives and the choice.
//! - [`edit`]: the recommended settings written into the policy file's text (comments
//!   kept, a header saying what was tuned).
//! - this module: the figures of a replay ([`point_of`]), the range split for the holdout,
//!   the groups (`--by`), and the search: successive halving (every candidate replayed on
//!   the last quarter of the in-sample range, the best by Pareto rank then objective
//!   replayed on all of it), then coordinate refinement around the choice; in two passes
//!   (the behavior, target and predictive keys, then the release keys from the first
//!   pass's choice: [`Space::passes`]). Candidates run in parallel, one replay per core;
//!   results do not depend on the thread count.
//! - [`cmd`]: the command (sources, progress, output, files).

pub mod cmd;
pub mod edit;
pub mod frontier;
pub mod space;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::fleet::Fleet;
use crate::policy::{Policy, Selector};
use crate::sim::report::{self, Prices, Summary};
use crate::sim::synthetic::SplitMix64;
use crate::sim::{PolicySet, SimError, SimOptions, SimRun, reference::Peer};
use crate::time::Timestamp;
use crate::trace::Trace;

pub use frontier::{Choice, Objective, Point};
pub use space::{Candidate, Knob, Setting, Space};

/// Errors `tune` reports as user errors (exit 1).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TuneError {
    #[error("the range is empty: {why}")]
    EmptyRange { why: String },
    #[error(
        "too little history for the holdout: {part} would span {have}, at least {need} is needed (lengthen --start/--end or lower --holdout)"
    )]
    TooShort {
        part: &'static str,
        have: String,
        need: String,
    },
    #[error("policy `{policy}` has nothing to tune: {why}")]
    NothingToTune { policy: String, why: String },
    #[error("--holdout `{0}`: write a share below 90%, like `25%` or `0.25` (`0%`: no holdout)")]
    BadHoldout(String),
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// The shortest in-sample part and holdout part tuned and reported on.
pub const MIN_PART: Duration = Duration::from_secs(3600);

/// `--holdout`: `25%` or `0.25`, in [0, 0.9].
pub fn parse_holdout(s: &str) -> Result<f64, TuneError> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => t.parse::<f64>(),
    };
    match v {
        Ok(x) if (0.0..=0.9).contains(&x) => Ok(x),
        _ => Err(TuneError::BadHoldout(s.to_string())),
    }
}

/// The tuning range split: choose on `[start, in_sample_end]`, report on the holdout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranges {
    pub start: Timestamp,
    pub in_sample_end: Timestamp,
    /// `[holdout start, end]`, unless `--holdout 0%`.
    pub holdout: Option<(Timestamp, Timestamp)>,
}

/// Splits `[start, end]`: the last `fraction` is held out, from a whole minute on; the
/// in-sample part ends one second before it.
pub fn split_range(start: Timestamp, end: Timestamp, fraction: f64) -> Result<Ranges, TuneError> {
    if start > end {
        return Err(TuneError::EmptyRange {
            why: format!("--start {start} is after --end {end}"),
        });
    }
    let span = end.millis() - start.millis();
    let min = crate::time::millis_i64(MIN_PART);
    let fmt = |ms: i64| crate::time::format_duration(Duration::from_millis(ms.max(0) as u64));
    if fraction <= 0.0 {
        if span < min {
            return Err(TuneError::TooShort {
                part: "the range",
                have: fmt(span),
                need: fmt(min),
            });
        }
        return Ok(Ranges {
            start,
            in_sample_end: end,
            holdout: None,
        });
    }
    let raw = start.millis() + ((span as f64) * (1.0 - fraction)).round() as i64;
    let split = raw.div_euclid(60_000) * 60_000;
    for (part, have) in [
        ("the in-sample part", split - start.millis()),
        ("the held-out part", end.millis() - split),
    ] {
        if have < min {
            return Err(TuneError::TooShort {
                part,
                have: fmt(have),
                need: fmt(min),
            });
        }
    }
    Ok(Ranges {
        start,
        in_sample_end: Timestamp(split - 1000),
        holdout: Some((Timestamp(split), end)),
    })
}

/// The figures of a replay, as `simulate`'s summary computes them (scalable proxies only).
pub fn point_of(run: &SimRun, prices: Option<&Prices>) -> Point {
    let daily = prices.is_some_and(|p| p.daily.is_some());
    let mut p = Point::default();
    let (mut steps, mut under) = (0u64, 0u64);
    let mut cost = 0.0;
    for r in run.proxies.iter().filter(|r| r.unscalable.is_none()) {
        let f = report::figures(r, prices, &|d, i| r.capacity(d, i));
        steps += f.steps;
        under += f.under_steps;
        p.footprint_mbps_hours += f.footprint_mbps_hours;
        p.footprint_concurrent_hours += f.footprint_concurrent_hours;
        if daily && let Some(c) = f.cost {
            cost += c;
        }
        p.changes += r.changes.len() as u64;
        p.proxy_days += r.step_ms.iter().map(|&m| f64::from(m)).sum::<f64>() / 86_400_000.0;
        p.flapping += report::flapping(r);
    }
    p.under_provisioned_pct = if steps > 0 {
        100.0 * under as f64 / steps as f64
    } else {
        0.0
    };
    p.cost = prices.map(|pr| {
        if daily {
            cost
        } else {
            p.footprint_mbps_hours * pr.mbps_hour
                + p.footprint_concurrent_hours * pr.concurrent_hour
        }
    });
    p.changes_per_proxy_day = if p.proxy_days > 0.0 {
        p.changes as f64 / p.proxy_days
    } else {
        0.0
    };
    p
}

/// The same figures from a report's summary.
pub fn point_of_summary(s: &Summary) -> Point {
    Point {
        under_provisioned_pct: s.figures.under_provisioned_pct,
        footprint_mbps_hours: s.figures.footprint_mbps_hours,
        footprint_concurrent_hours: s.figures.footprint_concurrent_hours,
        cost: s.figures.cost,
        changes: s.changes,
        proxy_days: s.proxy_days,
        changes_per_proxy_day: s.changes_per_proxy_day,
        flapping: s.flapping,
    }
}

/// `--by`: one tuned policy per policy, or per proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Policy,
    Proxy,
}

/// What one tuned policy is tuned for: a policy over its proxies, or (`--by proxy`) one
/// proxy under a copy of its policy named `POLICY-PROXY` that selects it alone.
#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    /// The policy as loaded (its `source` names the file).
    pub original: Policy,
    /// The policy tuned: the original, or its per-proxy copy.
    pub policy: Policy,
    /// The fleet's proxies the group's policy manages (ladders kept).
    pub fleet: Fleet,
}

/// The groups of `set` over `fleet`, and notes on what `--by proxy` leaves out (proxies
/// that cannot be resized get no per-proxy policy). Errors when a policy selects no
/// scalable proxy.
pub fn groups(
    set: &PolicySet,
    fleet: &Fleet,
    by: By,
) -> Result<(Vec<Group>, Vec<String>), TuneError> {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for (pi, policy) in set.policies.iter().enumerate() {
        let proxies: Vec<_> = fleet
            .proxies
            .iter()
            .filter(|px| set.owner(px) == Some(pi))
            .cloned()
            .collect();
        let scalable: Vec<_> = proxies
            .iter()
            .filter(|px| crate::sim::unscalable_reason(px).is_none())
            .cloned()
            .collect();
        if scalable.is_empty() {
            let why = if proxies.is_empty() {
                "it selects no proxy of the fleet".to_string()
            } else {
                format!(
                    "none of its {} proxies can be resized (Scalarable 0 or not RUNNING)",
                    proxies.len()
                )
            };
            return Err(TuneError::NothingToTune {
                policy: policy.name.clone(),
                why,
            });
        }
        match by {
            By::Policy => out.push(Group {
                name: policy.name.clone(),
                original: policy.clone(),
                policy: policy.clone(),
                fleet: Fleet {
                    ladders: fleet.ladders.clone(),
                    proxies,
                },
            }),
            By::Proxy => {
                for px in proxies.iter().filter(|px| !scalable.contains(px)) {
                    notes.push(format!(
                        "{} (policy `{}`) cannot be resized: no per-proxy policy is written for it, so none in --out selects it",
                        px.id, policy.name
                    ));
                }
                for px in scalable {
                    let mut p = policy.clone();
                    p.name = proxy_policy_name(&policy.name, &px.id);
                    p.selector = Selector {
                        proxies: vec![px.id.clone()],
                        tags: Default::default(),
                    };
                    out.push(Group {
                        name: p.name.clone(),
                        original: policy.clone(),
                        policy: p,
                        fleet: Fleet {
                            ladders: fleet.ladders.clone(),
                            proxies: vec![px],
                        },
                    });
                }
            }
        }
    }
    Ok((out, notes))
}

/// The name of a per-proxy policy (`--by proxy`).
pub fn proxy_policy_name(policy: &str, proxy: &str) -> String {
    format!("{policy}-{proxy}")
}

/// How candidates are replayed: the trace, the model and the progress hooks.
pub struct Evaluator<'a> {
    pub trace: &'a Trace,
    pub prices: Option<&'a Prices>,
    pub adjusting: Duration,
    /// Called with the evaluations a batch of replays is about to do.
    pub plan: &'a (dyn Fn(u64) + Sync),
    /// Called with evaluations done (from every thread).
    pub done: &'a (dyn Fn(u64) + Sync),
    /// Called when a pass of the search starts, with what it tunes (empty: the search
    /// has one pass).
    pub stage: &'a (dyn Fn(&str) + Sync),
}

impl Evaluator<'_> {
    fn options(&self, start: Timestamp, end: Timestamp, threads: usize) -> SimOptions {
        let mut o = SimOptions::new(start, end);
        o.adjusting = self.adjusting;
        o.threads = threads;
        o
    }

    fn set(policy: &Policy) -> PolicySet {
        PolicySet {
            label: policy.name.clone(),
            policies: vec![policy.clone()],
        }
    }

    /// The figures of each policy replayed over `[start, end]` on `fleet`, in order: one
    /// replay per core at a time (a replay's result does not depend on its threads).
    pub fn points(
        &self,
        policies: &[Policy],
        fleet: &Fleet,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Point>, SimError> {
        let Some(first) = policies.first() else {
            return Ok(Vec::new());
        };
        let threads = if policies.len() > 1 { 1 } else { 0 };
        let opts = self.options(start, end, threads);
        let each = crate::sim::evaluation_count(&Self::set(first), fleet, &opts);
        (self.plan)(each * policies.len() as u64);
        crate::par::map(policies, |_, p| {
            let run = crate::sim::replay(&Self::set(p), fleet, self.trace, &opts, &mut |n| {
                (self.done)(n)
            })?;
            Ok(point_of(&run, self.prices))
        })
        .into_iter()
        .collect()
    }

    /// The figures of the reference peers on `policy`'s proxies and bounds.
    pub fn peer_points(
        &self,
        policy: &Policy,
        peers: &[Peer],
        fleet: &Fleet,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Point>, SimError> {
        let opts = self.options(start, end, if peers.len() > 1 { 1 } else { 0 });
        let set = Self::set(policy);
        (self.plan)(crate::sim::evaluation_count(&set, fleet, &opts) * peers.len() as u64);
        crate::par::map(peers, |_, &peer| {
            let run =
                crate::sim::replay_reference(&set, peer, fleet, self.trace, &opts, &mut |n| {
                    (self.done)(n)
                })?;
            Ok(point_of(&run, self.prices))
        })
        .into_iter()
        .collect()
    }
}

/// How hard to search.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    pub objective: Objective,
    pub budget_changes: f64,
    pub seed: u64,
    /// Random candidates added to the one-key-at-a-time variations of the policy.
    pub random: usize,
    /// Candidates kept after screening on the short span.
    pub keep: usize,
    /// Rounds of coordinate refinement around the best candidates.
    pub refine_rounds: usize,
    /// Candidates whose neighbours are tried in each refinement round.
    pub refine_width: usize,
    /// Screen on a short span only when the in-sample part is at least this long.
    pub screen_from: Duration,
}

impl SearchOptions {
    pub fn new(objective: Objective, budget_changes: f64, seed: u64) -> SearchOptions {
        SearchOptions {
            objective,
            budget_changes,
            seed,
            random: 32,
            keep: 16,
            refine_rounds: 3,
            refine_width: 2,
            screen_from: Duration::from_secs(4 * 86_400),
        }
    }
}

/// A candidate replayed over the whole in-sample part.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluated {
    pub candidate: Candidate,
    pub point: Point,
}

/// One pass of a group's search: the keys it varied, from which point, and what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Pass {
    pub keys: Vec<Knob>,
    /// The point it started from (an index into [`Searched::evaluated`]): the current
    /// policy for the first pass, the first pass's choice for the second.
    pub base: usize,
    /// Candidates replayed on the short span.
    pub screened: usize,
    /// Candidates it replayed over the whole in-sample part.
    pub replayed: usize,
}

/// A group's search: every full-span evaluation (the policy's own first), how many
/// candidates were screened on the short span, and the passes.
#[derive(Clone, Debug)]
pub struct Searched {
    pub evaluated: Vec<Evaluated>,
    pub screened: usize,
    pub passes: Vec<Pass>,
}

/// What a pass of the search is about, for progress (`index` of `count`, its keys).
pub fn pass_label(index: usize, count: usize, keys: &[Knob]) -> String {
    if count <= 1 {
        return String::new();
    }
    let what = if keys.iter().all(|k| k.is_release()) {
        "release keys"
    } else {
        "behavior and target keys"
    };
    format!("pass {}/{count}: {what}", index + 1)
}

/// Searches `space` around `group.policy` over `[start, end]`, in passes
/// ([`Space::passes`]): first the behavior, target and predictive keys from the policy's
/// own settings, then the release keys (`hold_utilization`, `change_worth`) from the
/// first pass's choice. Every candidate of every pass is returned (the policy's own
/// first), for one frontier.
pub fn search(
    group: &Group,
    space: &Space,
    ev: &Evaluator,
    start: Timestamp,
    end: Timestamp,
    opts: &SearchOptions,
) -> Result<Searched, SimError> {
    let mut s = Searched {
        evaluated: Vec::new(),
        screened: 0,
        passes: Vec::new(),
    };
    let groups = space.passes();
    let mut base = space.current();
    // The current policy on the short span: the screening's reference in every pass.
    let mut short_current: Option<Point> = None;
    for (n, axes) in groups.iter().enumerate() {
        if n > 0 {
            let choice = choose(space, &s.evaluated, opts);
            base = s.evaluated[choice.index].candidate.clone();
        }
        let keys: Vec<Knob> = axes.iter().map(|&k| space.axes[k].knob).collect();
        (ev.stage)(&pass_label(n, groups.len(), &keys));
        let pass = search_pass(
            group,
            space,
            ev,
            (start, end),
            opts,
            (n, &base, axes),
            &mut s.evaluated,
            &mut short_current,
        )?;
        s.screened += pass.screened;
        s.passes.push(Pass { keys, ..pass });
    }
    Ok(s)
}

/// The recommendation among `evaluated` (the current policy first): [`frontier::choose`]
/// by the objective, near ties to the fewest keys changed.
fn choose(space: &Space, evaluated: &[Evaluated], opts: &SearchOptions) -> frontier::Choice {
    let points: Vec<Point> = evaluated.iter().map(|e| e.point.clone()).collect();
    let changed = changed_keys(space, evaluated);
    frontier::choose(
        &points,
        &points[0],
        opts.objective,
        opts.budget_changes,
        &changed,
    )
    .expect("the current policy is always evaluated")
}

/// How many keys each evaluated candidate changes from the current policy.
fn changed_keys(space: &Space, evaluated: &[Evaluated]) -> Vec<usize> {
    let current = space.current();
    evaluated
        .iter()
        .map(|e| {
            (0..current.len())
                .filter(|&k| e.candidate[k] != current[k])
                .count()
        })
        .collect()
}

/// One pass: the axes `axes` varied from `base` (the other keys kept at `base`'s), with
/// screening, full runs and refinement; the candidates it replays in full are appended to
/// `evaluated` (one already there is not replayed again). The objective's reference is
/// always the current policy (`evaluated[0]`, `short_current` on the short span).
#[allow(clippy::too_many_arguments)]
fn search_pass(
    group: &Group,
    space: &Space,
    ev: &Evaluator,
    (start, end): (Timestamp, Timestamp),
    opts: &SearchOptions,
    (n, base, axes): (usize, &Candidate, &[usize]),
    evaluated: &mut Vec<Evaluated>,
    short_current: &mut Option<Point>,
) -> Result<Pass, SimError> {
    let sub = space.around(base, axes);
    let lift = |c: &Candidate| space.lift(base, axes, c);
    let project = |c: &Candidate| Space::project(c, axes);
    let mut pool: Vec<Candidate> = vec![base.clone()];
    pool.extend(sub.one_at_a_time(&sub.current()).iter().map(lift));
    // The first pass draws as a search of its keys alone would; later passes their own.
    let mut rng = SplitMix64::new(
        opts.seed ^ fnv(&group.name) ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    for _ in 0..opts.random {
        pool.push(lift(&sub.random(&mut rng)));
    }
    let mut seen = BTreeSet::new();
    pool.retain(|c| seen.insert(c.clone()));
    let policies = |cs: &[Candidate]| -> Vec<Policy> {
        cs.iter().map(|c| space.apply(&group.policy, c)).collect()
    };
    let from_current = *base == space.current();

    // Successive halving: screen on the last quarter of the range, keep the best.
    let span = end.millis() - start.millis();
    let screen = span >= crate::time::millis_i64(opts.screen_from) && pool.len() > opts.keep;
    let mut screened = 0;
    if screen {
        let short_start = Timestamp(end.millis() - span / 4);
        let pts = ev.points(&policies(&pool), &group.fleet, short_start, end)?;
        screened = pool.len();
        if from_current {
            *short_current = Some(pts[0].clone());
        }
        let reference = match short_current.clone() {
            Some(p) => p,
            None => {
                let p = ev.points(
                    std::slice::from_ref(&group.policy),
                    &group.fleet,
                    short_start,
                    end,
                )?;
                screened += 1;
                p.into_iter().next().expect("one policy, one point")
            }
        };
        let ranks = frontier::ranks(&pts);
        let mut order: Vec<usize> = (1..pool.len()).collect();
        order.sort_by(|&a, &b| {
            ranks[a].cmp(&ranks[b]).then_with(|| {
                frontier::cmp_key(
                    opts.objective
                        .rank_key(&pts[a], &reference, opts.budget_changes),
                    opts.objective
                        .rank_key(&pts[b], &reference, opts.budget_changes),
                )
                .then(a.cmp(&b))
            })
        });
        let mut kept = vec![pool[0].clone()];
        kept.extend(order.into_iter().take(opts.keep).map(|i| pool[i].clone()));
        pool = kept;
    }

    // This pass's evaluations (indices into `evaluated`, its base first); a candidate
    // already replayed by an earlier pass is taken as it is.
    let mut mine: Vec<usize> = Vec::new();
    let mut replayed = 0;
    let mut run = |cs: Vec<Candidate>,
                   mine: &mut Vec<usize>,
                   evaluated: &mut Vec<Evaluated>|
     -> Result<(), SimError> {
        let mut fresh = Vec::new();
        for c in cs {
            match evaluated.iter().position(|e| e.candidate == c) {
                Some(i) => {
                    if !mine.contains(&i) {
                        mine.push(i);
                    }
                }
                None => fresh.push(c),
            }
        }
        let pts = ev.points(&policies(&fresh), &group.fleet, start, end)?;
        replayed += fresh.len();
        for (candidate, point) in fresh.into_iter().zip(pts) {
            mine.push(evaluated.len());
            evaluated.push(Evaluated { candidate, point });
        }
        Ok(())
    };
    run(pool, &mut mine, evaluated)?;

    // Refinement around the best few, until nothing new is better: their one-step
    // neighbours, and the best with each frontier point's own changes (from the base)
    // laid over it (so two single-key gains are tried together).
    for _ in 0..opts.refine_rounds {
        let points: Vec<Point> = mine.iter().map(|&i| evaluated[i].point.clone()).collect();
        let cands: Vec<Candidate> = mine
            .iter()
            .map(|&i| project(&evaluated[i].candidate))
            .collect();
        let current = &evaluated[0].point;
        let best = best_indices(&points, current, opts, opts.refine_width);
        let front = frontier::frontier(&points);
        let mut fresh: Vec<Candidate> = Vec::new();
        let offer = |n: Candidate, fresh: &mut Vec<Candidate>| {
            let n = lift(&n);
            // Screened-out candidates may come back: they were only seen on the short span.
            if !fresh.contains(&n) && !mine.iter().any(|&i| evaluated[i].candidate == n) {
                fresh.push(n);
            }
        };
        for &b in &best {
            for n in sub.neighbours(&cands[b]) {
                offer(n, &mut fresh);
            }
        }
        // The frontier's best few under the objective, pairwise, and over the best.
        let mut lead: Vec<usize> = front.clone();
        lead.sort_by(|&a, &b| {
            frontier::cmp_key(
                opts.objective
                    .rank_key(&points[a], current, opts.budget_changes),
                opts.objective
                    .rank_key(&points[b], current, opts.budget_changes),
            )
            .then(a.cmp(&b))
        });
        lead.truncate(CROSS_WIDTH / 2);
        // ...and the frontier's best by the objective's first figure alone (cheaper but
        // less safe, for `balanced`): a safer change may make up for them.
        let mut bold: Vec<usize> = front.clone();
        bold.sort_by(|&a, &b| {
            let (x, y) = (
                opts.objective.key(&points[a]),
                opts.objective.key(&points[b]),
            );
            x[0].total_cmp(&y[0]).then(a.cmp(&b))
        });
        for f in bold {
            if lead.len() >= CROSS_WIDTH {
                break;
            }
            if !lead.contains(&f) {
                lead.push(f);
            }
        }
        for &b in &best {
            for &f in &lead {
                offer(sub.overlay(&cands[b], &cands[f]), &mut fresh);
            }
        }
        for (i, &f) in lead.iter().enumerate() {
            for &g in &lead[i + 1..] {
                offer(sub.overlay(&cands[f], &cands[g]), &mut fresh);
            }
        }
        if fresh.is_empty() {
            break;
        }
        run(fresh, &mut mine, evaluated)?;
        let points: Vec<Point> = mine.iter().map(|&i| evaluated[i].point.clone()).collect();
        if best_indices(&points, &evaluated[0].point, opts, opts.refine_width) == best {
            break;
        }
    }
    Ok(Pass {
        keys: Vec::new(),
        base: mine[0],
        screened,
        replayed,
    })
}

/// How many frontier points (the best under the objective) are combined pairwise in
/// each refinement round.
const CROSS_WIDTH: usize = 6;

/// The `n` best of `points` under the objective (`current`, the current policy's
/// figures, as the reference for its constraints).
fn best_indices(points: &[Point], current: &Point, opts: &SearchOptions, n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..points.len()).collect();
    idx.sort_by(|&a, &b| {
        frontier::cmp_key(
            opts.objective
                .rank_key(&points[a], current, opts.budget_changes),
            opts.objective
                .rank_key(&points[b], current, opts.budget_changes),
        )
        .then(a.cmp(&b))
    });
    idx.truncate(n);
    idx
}

/// A stable hash of a group name (each group draws its own random candidates).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One group's outcome.
#[derive(Clone, Debug)]
pub struct Tuned {
    pub group: Group,
    pub space: Space,
    pub searched: Searched,
    /// Indices into `searched.evaluated`.
    pub frontier: Vec<usize>,
    pub choice: Choice,
    /// The reference peers on the in-sample part.
    pub peers: Vec<(Peer, Point)>,
    /// On the held-out part: (the current policy, the recommended one).
    pub holdout: Option<(Point, Point)>,
}

impl Tuned {
    pub fn current(&self) -> &Evaluated {
        &self.searched.evaluated[0]
    }
    pub fn chosen(&self) -> &Evaluated {
        &self.searched.evaluated[self.choice.index]
    }
    /// The recommended policy.
    pub fn policy(&self) -> Policy {
        self.space
            .apply(&self.group.policy, &self.chosen().candidate)
    }
}

/// Tunes one group: search, frontier, choice, the peers, the held-out figures.
pub fn tune_group(
    group: Group,
    space: Space,
    ev: &Evaluator,
    ranges: &Ranges,
    opts: &SearchOptions,
    peers: &[Peer],
) -> Result<Tuned, TuneError> {
    if space.is_empty() {
        return Err(TuneError::NothingToTune {
            policy: group.policy.name.clone(),
            why: "none of the keys asked for applies to it".into(),
        });
    }
    let searched = search(&group, &space, ev, ranges.start, ranges.in_sample_end, opts)?;
    let points: Vec<Point> = searched.evaluated.iter().map(|e| e.point.clone()).collect();
    let frontier = frontier::frontier(&points);
    let choice = choose(&space, &searched.evaluated, opts);
    let peer_points = ev.peer_points(
        &group.policy,
        peers,
        &group.fleet,
        ranges.start,
        ranges.in_sample_end,
    )?;
    let peers = peers.iter().copied().zip(peer_points).collect();
    let holdout = match ranges.holdout {
        None => None,
        Some((s, e)) => {
            let chosen = space.apply(&group.policy, &searched.evaluated[choice.index].candidate);
            let pts = ev.points(&[group.policy.clone(), chosen], &group.fleet, s, e)?;
            Some((pts[0].clone(), pts[1].clone()))
        }
    };
    Ok(Tuned {
        group,
        space,
        searched,
        frontier,
        choice,
        peers,
        holdout,
    })
}

/// The held-out warnings' margins: the choice's spend relative to the current policy may
/// be at most this much (as a ratio) worse on the held-out part than in-sample...
pub const HOLDOUT_SPEND_MARGIN: f64 = 0.10;
/// ...and its under-provisioning relative to the current policy at most this many
/// percentage points worse.
pub const HOLDOUT_UNDER_MARGIN_POINTS: f64 = 0.5;

/// Why the held-out figures do not bear the in-sample choice out (empty: they do).
pub fn holdout_warnings(t: &Tuned, budget_changes: f64) -> Vec<String> {
    let Some((cur_h, new_h)) = &t.holdout else {
        return Vec::new();
    };
    let (cur_i, new_i) = (&t.current().point, &t.chosen().point);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 1.0 };
    let mut out = Vec::new();
    let (ri, rh) = (
        ratio(new_i.spend(), cur_i.spend()),
        ratio(new_h.spend(), cur_h.spend()),
    );
    if rh > ri + HOLDOUT_SPEND_MARGIN {
        out.push(format!(
            "`{}`: spend relative to the current policy is {:.2}× on the held-out part against {:.2}× in-sample (margin {HOLDOUT_SPEND_MARGIN})",
            t.group.name, rh, ri
        ));
    }
    let (di, dh) = (
        new_i.under_provisioned_pct - cur_i.under_provisioned_pct,
        new_h.under_provisioned_pct - cur_h.under_provisioned_pct,
    );
    if dh > di + HOLDOUT_UNDER_MARGIN_POINTS {
        out.push(format!(
            "`{}`: under-provisioning relative to the current policy is {:+.2} points on the held-out part against {:+.2} in-sample (margin {HOLDOUT_UNDER_MARGIN_POINTS} points)",
            t.group.name, dh, di
        ));
    }
    if new_h.changes_per_proxy_day > budget_changes {
        out.push(format!(
            "`{}`: {:.1} changes per proxy-day on the held-out part, above the budget of {budget_changes}",
            t.group.name, new_h.changes_per_proxy_day
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_shares_parse() {
        let cases = [
            ("25%", Some(0.25)),
            ("0.25", Some(0.25)),
            ("0%", Some(0.0)),
            ("90%", Some(0.9)),
            ("95%", None),
            ("-1%", None),
            ("a", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_holdout(s).ok(), want, "{s}");
        }
    }

    #[test]
    fn ranges_split_at_a_whole_minute_and_refuse_short_parts() {
        let t0 = Timestamp::from_secs(1_793_577_600);
        let day = Duration::from_secs(86_400);
        let r = split_range(t0, t0 + day * 4, 0.25).unwrap();
        assert_eq!(r.holdout, Some((t0 + day * 3, t0 + day * 4)));
        assert_eq!(r.in_sample_end, t0 + day * 3 - Duration::from_secs(1));
        let r = split_range(t0, t0 + day, 0.0).unwrap();
        assert_eq!((r.in_sample_end, r.holdout), (t0 + day, None));
        assert!(matches!(
            split_range(t0 + day, t0, 0.25),
            Err(TuneError::EmptyRange { .. })
        ));
        assert!(matches!(
            split_range(t0, t0 + Duration::from_secs(3 * 3600), 0.25),
            Err(TuneError::TooShort {
                part: "the held-out part",
                ..
            })
        ));
    }

    /// The bundled fleet, the bundled `web` policy alone, and one synthetic day of it.
    fn web_one_day() -> (
        Fleet,
        crate::sim::synthetic::SyntheticSpec,
        crate::trace::Trace,
        PolicySet,
    ) {
        let fleet = Fleet::bundled();
        let text = include_str!("../../policies/web.toml");
        let policy =
            crate::policy::parse_policy(text, std::path::Path::new("policies/web.toml")).unwrap();
        let spec = crate::sim::synthetic::SyntheticSpec {
            days: 1,
            ..Default::default()
        };
        let targets: Vec<_> = fleet
            .proxies
            .iter()
            .map(crate::sim::synthetic::Target::of)
            .collect();
        let trace = crate::sim::synthetic::generate(
            &spec,
            &targets,
            &["bandwidth".to_string()],
            &["connections".to_string()],
        );
        let set = PolicySet {
            label: "t".into(),
            policies: vec![policy],
        };
        (fleet, spec, trace, set)
    }

    #[test]
    fn the_release_pass_starts_from_the_first_pass_s_choice_and_varies_only_release_keys() {
        let (fleet, spec, trace, set) = web_one_day();
        let (groups, _) = groups(&set, &fleet, By::Policy).unwrap();
        let group = &groups[0];
        let stages = std::sync::Mutex::new(Vec::new());
        let stage = |s: &str| stages.lock().unwrap().push(s.to_string());
        let ev = Evaluator {
            trace: &trace,
            prices: None,
            adjusting: Duration::from_secs(60),
            plan: &|_| {},
            done: &|_| {},
            stage: &stage,
        };
        let mut opts = SearchOptions::new(Objective::Balanced, 10.0, 3);
        opts.random = 6;
        opts.refine_rounds = 2;
        let (start, end) = (spec.start, spec.end() - Duration::from_secs(60));
        let space = Space::of(&group.policy, &Knob::ALL, false);
        let release: Vec<usize> = (0..space.axes.len())
            .filter(|&k| space.axes[k].knob.is_release())
            .collect();
        assert_eq!(release.len(), 2, "web: the bandwidth hold and worth");
        let s = search(group, &space, &ev, start, end, &opts).unwrap();
        assert_eq!(
            *stages.lock().unwrap(),
            [
                "pass 1/2: behavior and target keys",
                "pass 2/2: release keys"
            ]
        );
        let [first, second] = s.passes.as_slice() else {
            panic!("two passes: {:?}", s.passes);
        };
        assert!(first.keys.iter().all(|k| !k.is_release()));
        assert!(second.keys.iter().all(|k| k.is_release()));
        assert_eq!(first.keys.len() + second.keys.len(), space.axes.len());
        assert_eq!(first.base, 0);
        assert_eq!(s.evaluated[0].candidate, space.current());
        let n1 = first.replayed;
        assert_eq!(n1 + second.replayed, s.evaluated.len());
        assert!(second.replayed > 0);
        // The second pass starts from the first pass's recommendation...
        let points: Vec<Point> = s.evaluated.iter().map(|e| e.point.clone()).collect();
        let changed = changed_keys(&space, &s.evaluated);
        let choice1 = frontier::choose(
            &points[..n1],
            &points[0],
            opts.objective,
            10.0,
            &changed[..n1],
        )
        .unwrap();
        assert_eq!(second.base, choice1.index);
        assert_ne!(
            s.evaluated[second.base].candidate,
            space.current(),
            "the first pass changed something (else this test shows little)"
        );
        // ...and varies only the release keys; the first only the others (its targets not
        // above the policy's own hold, so no hold is clamped).
        let differs = |a: &Candidate, b: &Candidate| -> Vec<usize> {
            (0..a.len()).filter(|&k| a[k] != b[k]).collect()
        };
        let base2 = &s.evaluated[second.base].candidate;
        for e in &s.evaluated[..n1] {
            let d = differs(&e.candidate, &space.current());
            assert!(d.iter().all(|k| !release.contains(k)), "{d:?}");
        }
        for e in &s.evaluated[n1..] {
            let d = differs(&e.candidate, base2);
            assert!(
                !d.is_empty() && d.iter().all(|k| release.contains(k)),
                "{d:?}"
            );
        }
        // Same seed, same search; the frontier is over both passes, the choice on it.
        let again = search(group, &space, &ev, start, end, &opts).unwrap();
        assert_eq!(again.evaluated, s.evaluated);
        assert_eq!(again.passes, s.passes);
        let ranges = Ranges {
            start,
            in_sample_end: end,
            holdout: None,
        };
        let t = tune_group(group.clone(), space.clone(), &ev, &ranges, &opts, &[]).unwrap();
        assert_eq!(t.searched.evaluated, s.evaluated);
        for &i in &t.frontier {
            assert!(!points.iter().any(|q| q.dominates(&points[i])));
        }
        let best = frontier::choose(&points, &points[0], opts.objective, 10.0, &changed).unwrap();
        assert_eq!(t.choice, best);
        // The choice is on the frontier, or a near tie of the objective's best that
        // changes fewer keys.
        let ranked = frontier::choose(&points, &points[0], opts.objective, 10.0, &[]).unwrap();
        assert!(
            t.frontier.contains(&t.choice.index) || changed[t.choice.index] < changed[ranked.index],
            "choice {} ({} keys) vs {} ({} keys)",
            t.choice.index,
            changed[t.choice.index],
            ranked.index,
            changed[ranked.index]
        );

        // One group's keys only: one pass, from the policy's own settings.
        let only = Space::of(
            &group.policy,
            &[Knob::BandwidthHold, Knob::BandwidthWorth],
            false,
        );
        stages.lock().unwrap().clear();
        let s = search(group, &only, &ev, start, end, &opts).unwrap();
        assert_eq!(s.passes.len(), 1);
        assert_eq!(s.passes[0].base, 0);
        assert_eq!(*stages.lock().unwrap(), [""]);
    }

    #[test]
    fn a_run_s_point_equals_the_simulate_summary() {
        let (fleet, spec, trace, set) = web_one_day();
        let opts = SimOptions::new(spec.start, spec.end() - Duration::from_secs(60));
        let run = crate::sim::replay(&set, &fleet, &trace, &opts, &mut |_| {}).unwrap();
        let prices = Prices::parse(
            "mbps_hour = 0.01\nconcurrent_hour = 0.2\n",
            std::path::Path::new("p.toml"),
        )
        .unwrap();
        let daily = Prices::parse(
            include_str!("../../examples/prices-daily.toml"),
            std::path::Path::new("prices-daily.toml"),
        )
        .unwrap();
        for prices in [None, Some(&prices), Some(&daily)] {
            let summary = report::set_report(&run, prices).summary;
            assert!(summary.changes > 0);
            assert_eq!(point_of(&run, prices), point_of_summary(&summary));
        }
    }
}
