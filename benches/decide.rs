//! Decisions per second for one proxy with a full controller state (issue 2's benchmark).
//!
//! The state carries a full 10-minute stabilization history at a 30 s interval (20
//! recommendations per dimension) and recent cooldown stamps, so every stage does its work.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gaap_autoscaler::core::{ControllerState, Decision, DimState, decide, decide_into, fixtures};
use gaap_autoscaler::time::Timestamp;

fn full_state(now: Timestamp) -> ControllerState {
    let hist = |base: u32| DimState {
        recommendations: (0..20)
            .map(|i| (now - Duration::from_secs(30 * (20 - i)), base))
            .collect(),
        last_up: Some(now - Duration::from_secs(900)),
        last_down: Some(now - Duration::from_secs(1800)),
        missing_streak: 0,
        observed_since: Some(now - Duration::from_secs(86_400)),
        ..DimState::default()
    };
    ControllerState {
        bandwidth: hist(200),
        concurrent: hist(10),
        ..ControllerState::default()
    }
}

fn bench(c: &mut Criterion) {
    let policy = fixtures::policy();
    let ladder = fixtures::ladder();
    let proxy = fixtures::proxy(200, 10);
    let now = Timestamp::from_secs(1_795_939_200);
    let state = full_state(now);
    let mut g = c.benchmark_group("decide");
    g.throughput(Throughput::Elements(1));
    // Demand that needs a scale-down held by stabilization: every stage runs.
    let obs = fixtures::observe(90.0, 40_000.0, now);
    g.bench_function("one proxy, full state", |b| {
        b.iter(|| {
            decide(
                black_box(&policy),
                black_box(&proxy),
                Some(black_box(&ladder)),
                black_box(&obs),
                black_box(&state),
                black_box(now),
            )
        })
    });
    // The replay's way: into a reused Decision holding the state (the state copy for each
    // run is made outside the timing).
    g.bench_function("one proxy, full state, decide_into", |b| {
        b.iter_batched_ref(
            || Decision::with_state(state.clone()),
            |d| {
                decide_into(
                    black_box(&policy),
                    black_box(&proxy),
                    Some(black_box(&ladder)),
                    black_box(&obs),
                    black_box(now),
                    d,
                )
            },
            BatchSize::SmallInput,
        )
    });
    // The same with a business-hours window (cron evaluated per decision).
    let mut windowed = policy.clone();
    windowed
        .windows
        .push(fixtures::window("0 0 9 * * Mon-Fri", 10, 100));
    // After the first call the window memo answers (the window is closed until its next
    // opening): this is the warm path.
    g.bench_function("one proxy, full state, one window", |b| {
        b.iter(|| {
            decide(
                black_box(&windowed),
                black_box(&proxy),
                Some(black_box(&ladder)),
                black_box(&obs),
                black_box(&state),
                black_box(now),
            )
        })
    });
    // The cold path: the memo empty for every decision, so the cron schedule is evaluated
    // (a fresh copy of the window per iteration, made outside the timing).
    g.bench_function("one proxy, full state, one window, cold memo", |b| {
        b.iter_batched_ref(
            || {
                let mut p = windowed.clone();
                for w in &mut p.windows {
                    w.memo = Default::default();
                }
                p
            },
            |p| {
                decide(
                    black_box(p),
                    black_box(&proxy),
                    Some(black_box(&ladder)),
                    black_box(&obs),
                    black_box(&state),
                    black_box(now),
                )
            },
            BatchSize::SmallInput,
        )
    });
    // Predictive pre-scaling on (issue 13): a full week of hourly highs per dimension,
    // recorded and forecast at every decision; the state is in the reused Decision, as
    // in the replay.
    let mut predictive = policy.clone();
    predictive.predictive.mode = gaap_autoscaler::policy::PredictiveMode::Scale;
    let mut seasoned = state.clone();
    for dim in [&mut seasoned.bandwidth, &mut seasoned.concurrent] {
        for h in 0..7 * 24 {
            dim.season
                .record(now - Duration::from_secs(3600 * h), 150.0, 7);
        }
    }
    g.bench_function("one proxy, full state, predictive, decide_into", |b| {
        b.iter_batched_ref(
            || Decision::with_state(seasoned.clone()),
            |d| {
                decide_into(
                    black_box(&predictive),
                    black_box(&proxy),
                    Some(black_box(&ladder)),
                    black_box(&obs),
                    black_box(now),
                    d,
                )
            },
            BatchSize::SmallInput,
        )
    });
    // The peak hold and the change worth (the bundled `web`'s keys) with a 3h window: the
    // held values are kept beside the recommendations, and a demand that needs less than
    // the window holds tries each lower ladder value's shortened window.
    let mut early = policy.clone();
    early.behavior.scale_down.stabilization = Duration::from_secs(3 * 3600);
    for (dim, worth) in [(&mut early.bandwidth, 300.0), (&mut early.concurrent, 3.0)] {
        let dim = dim.as_mut().expect("the fixture manages both");
        dim.hold_utilization = Some(0.8);
        dim.change_worth = Some(worth);
    }
    let mut held = state.clone();
    for dim in [&mut held.bandwidth, &mut held.concurrent] {
        dim.held = dim.recommendations.clone();
    }
    let low = fixtures::observe(30.0, 12_000.0, now);
    g.bench_function(
        "one proxy, full state, hold + change_worth, decide_into",
        |b| {
            b.iter_batched_ref(
                || Decision::with_state(held.clone()),
                |d| {
                    decide_into(
                        black_box(&early),
                        black_box(&proxy),
                        Some(black_box(&ladder)),
                        black_box(&low),
                        black_box(now),
                        d,
                    )
                },
                BatchSize::SmallInput,
            )
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
