//! Decision-log appends per second on this machine's disk: one flush (fsync) per append,
//! as the daemon does before acting, and batches of 100 with one flush, as for the holds
//! of a pass. Also an outcome update (flushed) and reading the newest 100 of 10,000.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gaap_autoscaler::core::{ControllerState, decide, fixtures};
use gaap_autoscaler::policy::Mode;
use gaap_autoscaler::store::{
    DecisionLog, DecisionRecord, LogFilter, Outcome, OutcomeUpdate, RecordContext,
};
use gaap_autoscaler::time::Timestamp;

const T0: i64 = 1_795_939_200_000;

/// A realistic record: a scale-up with both signals, the ladder and the policy snapshot.
fn template() -> DecisionRecord {
    let now = Timestamp(T0);
    let policy = fixtures::policy();
    let proxy = fixtures::proxy(10, 2);
    let ladder = fixtures::ladder();
    let obs = fixtures::observe(100.0, 30_000.0, now - Duration::from_secs(10));
    let d = decide(
        &policy,
        &proxy,
        Some(&ladder),
        &obs,
        &ControllerState::default(),
        now,
    );
    DecisionRecord::from_decision(
        &d,
        &RecordContext {
            mode: Mode::Live,
            outcome: Outcome::Planned,
            proxy: &proxy,
            ladder: Some(&ladder),
            observation: &obs,
            policy: &policy,
            note: None,
        },
    )
}

/// `n` different records (sizes and compression depend on the content): proxies, current
/// values, demands (scale-ups, scale-downs, holds in the tolerance band, missing data),
/// policies with and without a window, from a fixed pseudo-random sequence.
fn varied(n: usize) -> Vec<DecisionRecord> {
    let ladder = fixtures::ladder();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    (0..n)
        .map(|k| {
            let now = Timestamp(T0 + k as i64 * 1000);
            let mut policy = fixtures::policy();
            policy.name = format!("policy-{}", next(40));
            if next(3) == 0 {
                policy
                    .windows
                    .push(fixtures::window("0 0 9 * * Mon-Fri", 10, 100));
            }
            let bw = ladder.bandwidth[next(ladder.bandwidth.len() as u64) as usize];
            let cc = ladder.concurrent[next(ladder.concurrent.len() as u64) as usize];
            let mut proxy = fixtures::proxy(bw, cc);
            proxy.id = format!("link-{:08x}", next(1 << 32));
            let mut obs = fixtures::observe(
                next(2_000) as f64 + next(1000) as f64 / 1000.0,
                next(400_000) as f64,
                now - Duration::from_secs(next(60)),
            );
            if next(10) == 0 {
                obs.signals.clear();
            }
            let d = decide(
                &policy,
                &proxy,
                Some(&ladder),
                &obs,
                &ControllerState::default(),
                now,
            );
            DecisionRecord::from_decision(
                &d,
                &RecordContext {
                    mode: Mode::Live,
                    outcome: Outcome::Planned,
                    proxy: &proxy,
                    ladder: Some(&ladder),
                    observation: &obs,
                    policy: &policy,
                    note: None,
                },
            )
        })
        .collect()
}

/// The record at `T0 + i` ms; `planned` ones go through a two-tree transaction.
fn at(t: &DecisionRecord, i: i64) -> DecisionRecord {
    let mut r = t.clone();
    r.outcome = Outcome::Planned;
    r.time = Timestamp(T0 + i);
    r.time_ms = T0 + i;
    r.id = gaap_autoscaler::store::decision_id(r.time, &r.proxy_id, 0);
    r
}

/// Bytes of the files under `dir`.
fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() { walk(&e.path()) } else { m.len() }
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let t = template();
    eprintln!(
        "record size: {} bytes of JSON (the scale-up template)",
        serde_json::to_vec(&t).unwrap().len()
    );
    // Every benchmark below writes these, in turn: 20,000 copies of one record would
    // compress far better than a real log.
    let pool = varied(1024);
    let sizes: Vec<usize> = pool
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap().len())
        .collect();
    eprintln!(
        "{} varied records: {}..{} bytes of JSON, mean {:.0}",
        pool.len(),
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap(),
        sizes.iter().sum::<usize>() as f64 / sizes.len() as f64
    );
    let rec = |i: i64| at(&pool[i as usize % pool.len()], i);
    // On the project's disk (ext4 here), not a tmpfs: the flush is a real fsync.
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    // Disk per record: 20,000 holds in batches of 100 (one pass each), then the files' size.
    {
        let dir = tempfile::tempdir_in(&base).unwrap();
        let n = 20_000;
        {
            let log = DecisionLog::open(dir.path()).unwrap();
            for b in 0..n / 100 {
                let batch: Vec<DecisionRecord> = (0..100)
                    .map(|k| {
                        let mut r = rec(b * 100 + k);
                        r.outcome = Outcome::Held;
                        r
                    })
                    .collect();
                log.append_batch(&batch).unwrap();
            }
        }
        let bytes: u64 = walk(dir.path());
        eprintln!(
            "disk: {:.0} bytes per record ({n} records, {:.1} MiB)",
            bytes as f64 / n as f64,
            bytes as f64 / (1 << 20) as f64
        );
    }
    let dir = tempfile::tempdir_in(&base).unwrap();
    let log = DecisionLog::open(dir.path()).unwrap();
    let mut i = 0i64;

    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(1));
    g.bench_function("append planned, flush each", |b| {
        b.iter(|| {
            i += 1;
            black_box(log.append(&rec(i)).unwrap())
        })
    });
    g.throughput(Throughput::Elements(100));
    g.bench_function("append_batch of 100 held, one flush", |b| {
        b.iter_batched(
            || {
                (0..100)
                    .map(|_| {
                        i += 1;
                        let mut r = rec(i);
                        r.outcome = Outcome::Held;
                        r
                    })
                    .collect::<Vec<_>>()
            },
            |recs| black_box(log.append_batch(&recs).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(1));
    let update = OutcomeUpdate {
        request_id: Some("req".into()),
        attempts: 1,
        ..Default::default()
    };
    g.bench_function("record_outcome, flushed", |b| {
        b.iter_batched(
            || {
                i += 1;
                log.append(&rec(i)).unwrap()
            },
            |id| log.record_outcome(&id, Outcome::Applied, &update).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
    eprintln!(
        "{i} records written with a flush each: {:.0} MiB on disk",
        walk_size(dir.path()) as f64 / 1_048_576.0
    );
    drop(log);

    let dir2 = tempfile::tempdir_in(&base).unwrap();
    let log2 = DecisionLog::open(dir2.path()).unwrap();
    for start in (0..20_000).step_by(1000) {
        let chunk: Vec<DecisionRecord> = (start..start + 1000).map(rec).collect();
        log2.append_batch(&chunk).unwrap();
    }
    let disk: u64 = walk_size(dir2.path());
    eprintln!(
        "20,000 records: {:.0} MiB on disk, process RSS {} (sled cache 16 MiB)",
        disk as f64 / 1_048_576.0,
        rss()
    );
    let mut g = c.benchmark_group("store read");
    g.throughput(Throughput::Elements(100));
    g.bench_function("list newest 100 of 20,000", |b| {
        let f = LogFilter {
            limit: Some(100),
            ..Default::default()
        };
        b.iter(|| black_box(log2.list(&f).unwrap()))
    });
    g.finish();
}

fn walk_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The process's resident memory, from /proc (Linux), for the report only.
fn rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.trim_start_matches("VmRSS:").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

criterion_group!(benches, bench);
criterion_main!(benches);
