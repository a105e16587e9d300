//! Issue 14's benchmark: `tune` over 100 proxies × 30 days of synthetic 1-minute samples
//! (the bundled fleet cloned to 100 proxies and the bundled policies, as
//! `gaap-autoscaler tune --synthetic --days 30 --proxies 100` runs them), holdout 25%.
//! One timed run (each is minutes long, too long for criterion's ten samples): the search
//! of every policy, its reference peers and its held-out replays. Prints the time, the
//! replays made and the choice per policy.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gaap_autoscaler::fleet::Fleet;
use gaap_autoscaler::sim::PolicySet;
use gaap_autoscaler::sim::reference::Peer;
use gaap_autoscaler::sim::synthetic::{self, SyntheticSpec, Target};
use gaap_autoscaler::tune::{self, By, Evaluator, Knob, Objective, SearchOptions, Space};

const PROXIES: usize = 100;
const DAYS: u32 = 30;

fn main() {
    // `cargo bench -- FILTER` passes arguments; a filter that excludes "tune" skips it.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !args.is_empty() && !args.iter().any(|a| "tune".contains(a.as_str())) {
        return;
    }
    let mut fleet = Fleet::bundled();
    let base = fleet.proxies.clone();
    for i in base.len()..PROXIES {
        let mut p = base[i % base.len()].clone();
        p.id = format!("link-sim{:05}", i + 1 - base.len());
        fleet.proxies.push(p);
    }
    let policies = [
        ("policies/web.toml", include_str!("../policies/web.toml")),
        (
            "policies/batch.toml",
            include_str!("../policies/batch.toml"),
        ),
    ]
    .iter()
    .map(|(name, text)| {
        gaap_autoscaler::policy::parse_policy(text, Path::new(name)).expect("bundled policy")
    })
    .collect();
    let set = PolicySet {
        label: "bench".into(),
        policies,
    };
    let spec = SyntheticSpec {
        days: DAYS,
        ..SyntheticSpec::default()
    };
    let targets: Vec<Target> = fleet.proxies.iter().map(Target::of).collect();
    let trace = synthetic::generate(
        &spec,
        &targets,
        &["bandwidth".to_string()],
        &["connections".to_string()],
    );
    let end = spec.end() - spec.step;
    let ranges = tune::split_range(spec.start, end, 0.25).expect("range");
    let (groups, _) = tune::groups(&set, &fleet, By::Policy).expect("groups");
    let evaluations = AtomicU64::new(0);
    let done = |n: u64| {
        evaluations.fetch_add(n, Ordering::Relaxed);
    };
    let ev = Evaluator {
        trace: &trace,
        prices: None,
        adjusting: Duration::from_secs(60),
        plan: &|_| {},
        done: &done,
        stage: &|_| {},
    };
    let opts = SearchOptions::new(Objective::Balanced, 10.0, synthetic::DEFAULT_SEED);
    let started = Instant::now();
    for g in groups {
        let t = Instant::now();
        let space = Space::of(&g.policy, &Knob::ALL, false);
        let name = g.name.clone();
        let proxies = g.fleet.proxies.len();
        let tuned = tune::tune_group(g, space, &ev, &ranges, &opts, &Peer::ALL).expect("tune");
        eprintln!(
            "tune {name} ({proxies} proxies, {} keys): {:.1?}; {} screened on the last quarter, {} replayed in full, frontier {} points; changed {:?}",
            tuned.space.axes.len(),
            t.elapsed(),
            tuned.searched.screened,
            tuned.searched.evaluated.len(),
            tuned.frontier.len(),
            tuned
                .space
                .changes(&tuned.chosen().candidate)
                .iter()
                .map(|(k, v)| format!("{}={v}", k.key()))
                .collect::<Vec<_>>()
        );
    }
    eprintln!(
        "tune {PROXIES} proxies × {DAYS} days (synthetic, holdout 25%): {:.1?} on {} threads, {} evaluations replayed",
        started.elapsed(),
        gaap_autoscaler::par::threads(),
        evaluations.load(Ordering::Relaxed)
    );
}
