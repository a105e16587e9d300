//! One daemon evaluation pass against a real Prometheus (issue 6's benchmark): 2,000
//! proxies, two signals (DESIGN.md's example queries), 1 hour of 1-minute samples
//! backfilled by promtool.
//!
//! - `raw`: the same two range requests `observe` sends (same windows), concurrently,
//!   each answer read to its last byte and not parsed: the floor any client pays.
//! - `observe`: `Prometheus::observe` plus `for_proxy` for every proxy: requests, JSON
//!   decoding, the split by `channel_id` and the classification.
//!
//! - `engine_only_decode_split_classify`: the engine's CPU work alone on the two answers
//!   of one pass (saved once), without IO.
//!
//! The engine's share is `observe - raw` (and, measured directly, the engine-only time);
//! the target is less than 20% of `raw`. After criterion's report, a paired comparison
//! (alternating runs, medians) prints the ratios.

#[path = "../tests/support/prom.rs"]
mod prom;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use gaap_autoscaler::core::{Observation, fixtures};
use gaap_autoscaler::metrics::{ClientOptions, Prometheus, decode_answer, readings_at};
use gaap_autoscaler::policy::{Policy, Schedule};
use gaap_autoscaler::time::Timestamp;

const END: i64 = 1_790_006_400;
const PROXIES: usize = 2_000;

fn data() -> prom::OpenMetrics {
    let mut om = prom::OpenMetrics::new();
    let ids: Vec<String> = (0..PROXIES).map(|i| format!("link-{i:08}")).collect();
    let minutes = || (END - 3600..=END).step_by(60);
    for (i, id) in ids.iter().enumerate() {
        om.series(
            "qce_qaap_outbandwidth_max",
            &[("channel_id", id)],
            minutes().map(|t| (t, 50.0 + ((t / 60 + i as i64) % 100) as f64 * 1.5)),
        );
    }
    for (i, id) in ids.iter().enumerate() {
        om.series(
            "qce_qaap_connum_max",
            &[("channel_id", id)],
            minutes().map(|t| (t, 10_000.0 + ((t / 60 * 7 + i as i64) % 1000) as f64)),
        );
    }
    om
}

fn policy() -> Policy {
    let mut p = fixtures::policy();
    p.schedule = Schedule::Interval(Duration::from_secs(30));
    p.signals.get_mut("bandwidth").unwrap().query =
        "max by (channel_id) (max_over_time(qce_qaap_outbandwidth_max[2m]))".into();
    p.signals.get_mut("connections").unwrap().query =
        "max by (channel_id) (qce_qaap_connum_max)".into();
    p
}

/// The two answers of one pass, as bytes (name, body).
async fn raw_bodies(
    http: &reqwest::Client,
    url: &str,
    policy: &Policy,
    now: Timestamp,
) -> Vec<(String, Vec<u8>)> {
    let windows = Prometheus::observe_windows(policy, now);
    let mut out = Vec::new();
    for (name, w) in windows {
        let q = policy.signals[&name].query.clone();
        let body = http
            .post(format!("{url}/api/v1/query_range"))
            .form(&[
                ("query", q),
                ("start", w.start.to_string()),
                ("end", w.end.to_string()),
                ("step", (w.step as f64).to_string()),
            ])
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        out.push((name, body));
    }
    out
}

/// The engine's own work on one pass's answers: decode, split by proxy, classify, and
/// build every proxy's observation.
fn engine_cpu(
    bodies: &[(String, Vec<u8>)],
    policy: &Policy,
    ids: &[String],
    now: Timestamp,
) -> usize {
    let mut per_proxy: std::collections::HashMap<String, Observation> = Default::default();
    for (name, body) in bodies {
        let s = &policy.signals[name];
        let series = decode_answer(body, &s.proxy_label, Some(now)).unwrap();
        for (proxy, r) in readings_at(&series, now, s.max_age.as_millis() as i64) {
            per_proxy
                .entry(proxy)
                .or_default()
                .signals
                .insert(name.clone(), r);
        }
    }
    ids.iter()
        .filter(|id| per_proxy.get(*id).is_some_and(|o| o.signals.len() == 2))
        .count()
}

async fn raw(http: &reqwest::Client, url: &str, policy: &Policy, now: Timestamp) -> usize {
    let windows = Prometheus::observe_windows(policy, now);
    let send = |name: &str| {
        let w = windows[name];
        let q = policy.signals[name].query.clone();
        let req = http.post(format!("{url}/api/v1/query_range")).form(&[
            ("query", q),
            ("start", w.start.to_string()),
            ("end", w.end.to_string()),
            ("step", (w.step as f64).to_string()),
            ("timeout", "10000ms".to_string()),
        ]);
        async move { req.send().await.unwrap().bytes().await.unwrap().len() }
    };
    let (a, b) = tokio::join!(send("bandwidth"), send("connections"));
    a + b
}

async fn engine(prom: &Prometheus, policy: &Policy, ids: &[String], now: Timestamp) -> usize {
    let obs = prom.observe(policy, now).await;
    assert!(obs.errors.is_empty(), "{:?}", obs.errors);
    ids.iter()
        .map(|id| obs.for_proxy(id))
        .filter(|o| o.signals.values().all(|r| r.value().is_some()))
        .count()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let t0 = Instant::now();
    let om = data();
    let server = prom::PromServer::start(&om);
    eprintln!(
        "prometheus ready with {} samples in {:.1} s",
        om.sample_count(),
        t0.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let prom = Prometheus::new(&server.url, ClientOptions::default()).unwrap();
    let http = reqwest::Client::new();
    let policy = policy();
    let ids: Vec<String> = (0..PROXIES).map(|i| format!("link-{i:08}")).collect();
    let now = Timestamp::from_secs(END - 600);

    // Sanity: every proxy gets both values, and the raw answers are not empty.
    assert_eq!(rt.block_on(engine(&prom, &policy, &ids, now)), PROXIES);
    let bytes = rt.block_on(raw(&http, &server.url, &policy, now));
    eprintln!("one pass reads {bytes} bytes of JSON");
    let bodies = rt.block_on(raw_bodies(&http, &server.url, &policy, now));
    assert_eq!(engine_cpu(&bodies, &policy, &ids, now), PROXIES);

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(30)
        .measurement_time(Duration::from_secs(15));
    let mut g = c.benchmark_group("prometheus_pass_2000_proxies_2_signals");
    g.bench_function("raw", |b| {
        b.iter(|| black_box(rt.block_on(raw(&http, &server.url, &policy, now))))
    });
    g.bench_function("engine_only_decode_split_classify", |b| {
        b.iter(|| black_box(engine_cpu(&bodies, &policy, &ids, now)))
    });
    g.bench_function("observe", |b| {
        b.iter(|| black_box(rt.block_on(engine(&prom, &policy, &ids, now))))
    });
    g.finish();
    c.final_summary();

    // Paired comparison: alternate the two so drift affects both alike.
    let (mut r, mut e, mut cpu, mut scan) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..40 {
        // The floor of any JSON decoder: scanning the answers without keeping anything.
        let t = Instant::now();
        for (_, body) in &bodies {
            black_box(serde_json::from_slice::<serde::de::IgnoredAny>(body).unwrap());
        }
        scan.push(t.elapsed());
        let t = Instant::now();
        black_box(engine_cpu(&bodies, &policy, &ids, now));
        cpu.push(t.elapsed());
        let t = Instant::now();
        black_box(rt.block_on(raw(&http, &server.url, &policy, now)));
        r.push(t.elapsed());
        let t = Instant::now();
        black_box(rt.block_on(engine(&prom, &policy, &ids, now)));
        e.push(t.elapsed());
    }
    let (r, e, cpu, scan) = (median(r), median(e), median(cpu), median(scan));
    println!(
        "JSON scan alone (serde_json into IgnoredAny, the floor of any decoder): {:.2} ms",
        scan.as_secs_f64() * 1e3
    );
    println!(
        "engine's own work (decode + split + classify, no IO): {:.2} ms = {:.1}% of raw",
        cpu.as_secs_f64() * 1e3,
        cpu.as_secs_f64() / r.as_secs_f64() * 100.0
    );
    println!(
        "paired medians over 40 runs: raw {:.2} ms, observe {:.2} ms, engine adds {:.2} ms = {:.1}% of raw (target < 20%)",
        r.as_secs_f64() * 1e3,
        e.as_secs_f64() * 1e3,
        (e.as_secs_f64() - r.as_secs_f64()) * 1e3,
        (e.as_secs_f64() / r.as_secs_f64() - 1.0) * 100.0
    );
}
