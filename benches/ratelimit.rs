//! The per-action budget: the cost of one `try_acquire`, and the rate it achieves against
//! the 20 requests/second limit (500 requests under simulated time, and 100 requests
//! through the async limiter in real time, printed before the criterion runs).
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use gaap_autoscaler::ratelimit::{
    DEFAULT_WINDOW, Priority, RateLimiter, Window, burst, max_in_any_window,
};
use std::hint::black_box;

fn achieved_rate() {
    let grants = burst(&mut Window::new(20, DEFAULT_WINDOW).unwrap(), 500);
    let span = grants.last().unwrap().as_secs_f64() + 1.0;
    println!(
        "budget (simulated): 500 requests in {span:.2} s = {:.2}/s against 20/s ({:.1}% over the 25 s minimum); max in any 1 s window: {}",
        500.0 / span,
        (span / 25.0 - 1.0) * 100.0,
        max_in_any_window(&grants, Duration::from_secs(1))
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(against_the_sandbox(200));
}

/// `n` modify calls through the shipped budget and client to the sandbox over loopback in
/// real time; the rate is what the sandbox recorded as arrivals.
async fn against_the_sandbox(n: usize) {
    use gaap_autoscaler::cloud::client::{ClientConfig, GaapApi, GaapClient, ModifyRequest};
    use gaap_autoscaler::cloud::credentials::Credentials;
    use gaap_autoscaler::cloud::request::Endpoint;
    use gaap_autoscaler::sandbox::SandboxConfig;
    use gaap_autoscaler::sandbox::arrivals::most_in_one_second;
    let fleet = gaap_autoscaler::fleet::Fleet::bundled();
    let first = fleet.proxies[0].clone();
    let proxy = first.id.clone();
    let steps = fleet
        .ladder_for(&first.access_region, &first.real_server_region)
        .map_or(vec![10, 20], |l| l.bandwidth.clone());
    let mut config = SandboxConfig::new(fleet, "AKIDbench", "benchkey");
    config.adjusting = Duration::ZERO;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(gaap_autoscaler::sandbox::serve(config, listener));
    let client = Arc::new(
        GaapClient::new(
            ClientConfig::new(Endpoint::parse(&endpoint).unwrap()),
            Credentials::new("AKIDbench", "benchkey", None).unwrap(),
            Arc::new(RateLimiter::new(20).unwrap()),
        )
        .unwrap(),
    );
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (c, proxy) = (client.clone(), proxy.clone());
            let bw = steps[i % steps.len().min(2)];
            tokio::spawn(async move {
                c.modify_proxy_configuration(
                    &ModifyRequest {
                        proxy_id: proxy,
                        bandwidth: Some(bw),
                        concurrent: None,
                        client_token: format!("bench-{i}"),
                        billing_type: None,
                    },
                    Priority::High,
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await.unwrap();
    }
    let wall = start.elapsed().as_secs_f64();
    let calls: Vec<serde_json::Value> = reqwest::get(format!("{endpoint}/__sandbox/calls"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.abort();
    let mut ms: Vec<i64> = calls
        .iter()
        .map(|c| {
            gaap_autoscaler::time::parse_time(c["time"].as_str().unwrap())
                .unwrap()
                .millis()
        })
        .collect();
    ms.sort();
    let limited = calls
        .iter()
        .filter(|c| c["error_code"] == "RequestLimitExceeded")
        .count();
    // After the first 20 (granted at once), the steady rate between arrivals 20 and n.
    let steady = (ms.len() - 21) as f64 / ((ms[ms.len() - 1] - ms[20]) as f64 / 1000.0);
    println!(
        "budget (real time, client -> sandbox over loopback): {} calls in {wall:.2} s wall; steady {steady:.2} arrivals/s at the sandbox; max in any 1 s: {}; RequestLimitExceeded: {limited}",
        ms.len(),
        most_in_one_second(&ms)
    );
}

fn bench(c: &mut Criterion) {
    c.bench_function("ratelimit/try_acquire (full window, 1 ms steps)", |b| {
        let mut w = Window::new(20, DEFAULT_WINDOW).unwrap();
        let mut t = Duration::ZERO;
        b.iter(|| {
            t += Duration::from_millis(1);
            black_box(w.try_acquire(black_box(t)))
        })
    });
}

criterion_group!(benches, bench);

fn main() {
    achieved_rate();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
