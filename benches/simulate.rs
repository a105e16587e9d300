//! Issue 3's benchmark: 30 days of 1-minute samples for 100 proxies, two signals each
//! (8.64 million samples), simulated end to end (source → replay → report figures):
//! - `synthetic`: generate the trace in memory, replay, report;
//! - `csv`: read a metrics CSV file (written once in the setup), replay, report.
//!
//! The policy is the fixture policy (target 0.7 on both dimensions, default behavior)
//! evaluated every minute, the samples' resolution. Peak RSS (VmHWM) is printed at the end.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gaap_autoscaler::core::{ProxyState, fixtures};
use gaap_autoscaler::fleet::{Fleet, LadderEntry};
use gaap_autoscaler::policy::{Schedule, Selector};
use gaap_autoscaler::sim::synthetic::{self, SyntheticSpec, Target};
use gaap_autoscaler::sim::{PolicySet, SimOptions, csv, replay, report};
use gaap_autoscaler::trace::Trace;

const PROXIES: usize = 100;
const DAYS: u32 = 30;

fn fleet() -> Fleet {
    let caps = [(20, 2), (50, 5), (100, 5), (200, 10), (500, 20)];
    let proxies: Vec<ProxyState> = (0..PROXIES)
        .map(|i| {
            let (bw, conc) = caps[i % caps.len()];
            ProxyState {
                id: format!("link-{i:08}"),
                tags: BTreeMap::from([("autoscale".to_string(), "web".to_string())]),
                ..fixtures::proxy(bw, conc)
            }
        })
        .collect();
    Fleet {
        ladders: vec![LadderEntry {
            access_region: "Guangzhou".into(),
            dest_region: None,
            ladder: fixtures::ladder(),
        }],
        proxies,
    }
}

fn policy_set() -> PolicySet {
    let mut p = fixtures::policy();
    p.selector = Selector {
        proxies: Vec::new(),
        tags: BTreeMap::from([("autoscale".to_string(), "web".to_string())]),
    };
    p.schedule = Schedule::Interval(Duration::from_secs(60));
    PolicySet {
        label: "bench".into(),
        policies: vec![p],
    }
}

fn spec() -> SyntheticSpec {
    SyntheticSpec {
        days: DAYS,
        ..SyntheticSpec::default()
    }
}

fn targets(fleet: &Fleet) -> Vec<Target> {
    fleet.proxies.iter().map(Target::of).collect()
}

fn generate(fleet: &Fleet) -> Trace {
    synthetic::generate(
        &spec(),
        &targets(fleet),
        &["bandwidth".into()],
        &["connections".into()],
    )
}

fn simulate(set: &PolicySet, fleet: &Fleet, trace: &Trace) -> f64 {
    let s = spec();
    let opts = SimOptions::new(s.start, s.end() - s.step);
    let run = replay(set, fleet, trace, &opts, &mut |_| {}).expect("replay");
    let r = report::set_report(&run, None);
    r.summary.figures.footprint_mbps_hours
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn bench(c: &mut Criterion) {
    let fleet = fleet();
    let set = policy_set();
    let samples = 2 * PROXIES as u64 * u64::from(DAYS) * 1440;

    let csv_samples;
    // The CSV file, written once (values rounded to 0.01 as exports usually are).
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("metrics.csv");
    {
        let mut trace = generate(&fleet);
        csv_samples = trace.sample_count();
        for s in trace.series.values_mut() {
            for v in &mut s.values {
                *v = (*v * 100.0).round() / 100.0;
            }
        }
        let file = std::fs::File::create(&path).expect("create csv");
        csv::write(&trace, std::io::BufWriter::new(file)).expect("write csv");
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!("CSV file: {:.0} MiB", size as f64 / (1 << 20) as f64);
    // A one-shot breakdown of where the time goes (printed, not asserted).
    {
        let s = spec();
        let opts = SimOptions::new(s.start, s.end() - s.step);
        let t = std::time::Instant::now();
        let trace = generate(&fleet);
        let t_gen = t.elapsed();
        let t = std::time::Instant::now();
        let run = replay(&set, &fleet, &trace, &opts, &mut |_| {}).expect("replay");
        let t_replay = t.elapsed();
        let t = std::time::Instant::now();
        let one = SimOptions {
            threads: 1,
            ..opts.clone()
        };
        drop(replay(&set, &fleet, &trace, &one, &mut |_| {}).expect("replay"));
        let t_replay_one = t.elapsed();
        let t = std::time::Instant::now();
        let r = report::set_report(&run, None);
        let t_report = t.elapsed();
        let t = std::time::Instant::now();
        let (from_csv, _) = csv::read_file(&path, &csv::Filter::default()).expect("read csv");
        let t_csv = t.elapsed();
        drop(from_csv);
        let evaluations: usize = run.proxies.iter().map(|p| p.steps()).sum();
        eprintln!(
            "breakdown: generate {t_gen:?} ({} samples), replay {t_replay:?} ({evaluations} evaluations, {} changes, API {:?}; on one thread {t_replay_one:?}), report {t_report:?}, CSV read {t_csv:?}",
            trace.sample_count(),
            r.summary.changes,
            run.api
        );
    }

    let mut g = c.benchmark_group("simulate_30d_100proxies");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(samples));
    g.bench_function("synthetic", |b| {
        b.iter(|| {
            let trace = generate(&fleet);
            black_box(simulate(&set, &fleet, &trace))
        })
    });
    eprintln!(
        "peak RSS after the synthetic runs: {:.0} MiB",
        peak_rss_mib().unwrap_or(f64::NAN)
    );

    let filter = csv::Filter::default();
    g.bench_function("csv", |b| {
        b.iter(|| {
            let (trace, stats) = csv::read_file(&path, &filter).expect("read csv");
            assert_eq!(stats.samples as usize, csv_samples);
            black_box(simulate(&set, &fleet, &trace))
        })
    });
    g.finish();
    eprintln!(
        "peak RSS after the CSV runs: {:.0} MiB",
        peak_rss_mib().unwrap_or(f64::NAN)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
