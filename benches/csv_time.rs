//! Issue 16's question for the CSV reader: does the hand-written timestamp fast path
//! (whole Unix seconds; `YYYY-MM-DDTHH:MM:SSZ`) pay against chrono's RFC 3339 parser
//! (`csv::parse_timestamp_general`)? Per timestamp, 1,000 distinct values per iteration.
//! The figures are quoted at `sim::csv::parse_timestamp`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gaap_autoscaler::sim::csv::{parse_timestamp, parse_timestamp_general};

fn bench(c: &mut Criterion) {
    let t0 = 1_795_939_200i64;
    let unix: Vec<String> = (0..1000).map(|i| (t0 + i * 60).to_string()).collect();
    let rfc: Vec<String> = (0..1000)
        .map(|i| {
            chrono::DateTime::from_timestamp(t0 + i * 60, 0)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .collect();
    let mut g = c.benchmark_group("csv_timestamp");
    g.throughput(Throughput::Elements(1000));
    for (name, values) in [("unix", &unix), ("rfc3339_z", &rfc)] {
        g.bench_function(format!("{name}/fast_path"), |b| {
            b.iter(|| {
                for v in values {
                    black_box(parse_timestamp(black_box(v.as_bytes())));
                }
            })
        });
        g.bench_function(format!("{name}/chrono"), |b| {
            b.iter(|| {
                for v in values {
                    black_box(parse_timestamp_general(black_box(v.as_bytes())));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
