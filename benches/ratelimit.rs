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
    let (elapsed, times) = rt.block_on(async {
        let limiter = Arc::new(RateLimiter::new(20).unwrap());
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..100 {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move {
                drop(
                    l.acquire(
                        "ModifyProxyConfiguration",
                        if i % 2 == 0 {
                            Priority::High
                        } else {
                            Priority::Low
                        },
                    )
                    .await,
                );
                start.elapsed()
            }));
        }
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap());
        }
        times.sort();
        (start.elapsed(), times)
    });
    let span = elapsed.as_secs_f64();
    println!(
        "budget (real time, async limiter): 100 grants, last at {span:.3} s; steady rate {:.2}/s; max in any 1 s window: {}",
        80.0 / times[99].saturating_sub(times[19]).as_secs_f64().max(1e-9),
        max_in_any_window(&times, Duration::from_secs(1))
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
