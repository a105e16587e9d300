//! One evaluation pass over 2,000 proxies: the engine's own time (fleet in memory, readings
//! precomputed, changes answered at once, decisions written to a real sled log), i.e.
//! everything but the network and the API budget's waits.
//!
//! Passes are 20 minutes apart with changes (past every cooldown, so each pass does the
//! same work; holds repeat within the hour a record folds them for) and 30 s apart (the
//! policy's interval) when all hold: both count repeated holds on the stored record
//! instead of writing them again, as the daemon does. The bench prints the records
//! written per pass to show it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gaap_autoscaler::core::{Ladder, Observation, ProxyState, ProxyStatus, fixtures};
use gaap_autoscaler::daemon::engine::{Engine, EngineOptions};
use gaap_autoscaler::daemon::ports::*;
use gaap_autoscaler::daemon::schedule::Clock;
use gaap_autoscaler::daemon::stats::Stats;
use gaap_autoscaler::policy::Policy;
use gaap_autoscaler::store::DecisionLog;
use gaap_autoscaler::time::Timestamp;

const N: usize = 2_000;

struct MemCloud(Vec<ProxyState>);

impl Cloud for MemCloud {
    async fn list_proxies(&self) -> Result<Vec<ProxyState>, PortError> {
        Ok(self.0.clone())
    }
    async fn ladder(&self, _: &str, _: &str) -> Result<Ladder, PortError> {
        Ok(fixtures::ladder())
    }
    async fn statuses(&self, _: &[String]) -> Result<HashMap<String, ProxyStatus>, PortError> {
        Ok(HashMap::new())
    }
    async fn modify(&self, call: ModifyCall) -> ModifyResult {
        ModifyResult::Applied {
            request_id: call.client_token,
            attempts: 1,
            confirmed_duplicate: false,
        }
    }
}

struct MemMetrics(HashMap<String, Observation>);

impl Metrics for MemMetrics {
    async fn observe(&self, _: &Policy, _: &[String], _: Timestamp) -> PolicyReadings {
        PolicyReadings {
            per_proxy: self.0.clone(),
            query_errors: Vec::new(),
        }
    }

    // The bench policy's [predictive] is off: never asked.
    async fn hourly_highs(
        &self,
        _: &Policy,
        _: &[String],
        _: Timestamp,
    ) -> Result<History, String> {
        Ok(History::new())
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let now = Timestamp::from_secs(1_795_939_200);
    let proxies: Vec<ProxyState> = (0..N)
        .map(|i| {
            let mut p = fixtures::proxy(100, 5);
            p.id = format!("link-{i:08}");
            p
        })
        .collect();
    // A tenth of the proxies need more capacity; the rest hold.
    let readings: HashMap<String, Observation> = proxies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let bw = if i % 10 == 0 { 120.0 } else { 70.0 };
            (p.id.clone(), fixtures::observe(bw, 35_000.0, now))
        })
        .collect();
    let mut policy = fixtures::policy();
    policy.selector.proxies = proxies.iter().map(|p| p.id.clone()).collect();
    let policy = Arc::new(policy);
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(DecisionLog::open(dir.path()).unwrap());
    let engine = rt.block_on(async {
        Engine::new(
            Arc::new(MemCloud(proxies)),
            Arc::new(MemMetrics(readings)),
            log.clone(),
            Arc::new(Stats::new()),
            EngineOptions {
                watch_completion: false,
                ..EngineOptions::default()
            },
            Clock::starting_at(now),
        )
        .unwrap()
    });
    let mut g = c.benchmark_group("daemon");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let mut t = now;
    let mut passes = 0usize;
    let before = log.len();
    g.bench_function("one pass, 2000 proxies (200 changes), sled log", |b| {
        b.iter(|| {
            t = t + Duration::from_secs(1200);
            passes += 1;
            rt.block_on(async {
                let mut calls = Vec::new();
                engine.run_pass(&policy, t, &mut calls).await;
                for h in calls {
                    h.await.unwrap();
                }
            })
        })
    });
    eprintln!(
        "with changes: {:.0} records written per pass of {N} ({passes} passes)",
        (log.len() - before) as f64 / passes as f64
    );
    // The same fleet with every proxy holding (no modify call): decide + log only.
    let mut calm = (*policy).clone();
    calm.bandwidth.as_mut().unwrap().max = 100;
    let calm = Arc::new(calm);
    let (before, mut passes) = (log.len(), 0usize);
    g.bench_function("one pass, 2000 proxies (all held), sled log", |b| {
        b.iter(|| {
            t = t + Duration::from_secs(30);
            passes += 1;
            rt.block_on(async {
                let mut calls = Vec::new();
                engine.run_pass(&calm, t, &mut calls).await;
                assert!(calls.is_empty());
            })
        })
    });
    g.finish();
    eprintln!(
        "all held: {:.1} records written per pass of {N} ({passes} passes; repeats counted)",
        (log.len() - before) as f64 / passes as f64
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
