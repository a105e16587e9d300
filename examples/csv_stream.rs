//! Times reading a metrics CSV sorted by time: the streaming reader (`CsvSource`, a chunk
//! of 1 Mi samples at a time, as `simulate` reads it) against the in-memory one.
//!
//! `cargo run --release --example csv_stream -- FILE` (FILE is written first if missing:
//! 100 proxies × 30 days × 1-min × 2 signals = 8.64 M samples, sorted by time, Unix
//! seconds). Compare with DuckDB: `SELECT count(*), sum(value) FROM read_csv('FILE')`.

use std::io::Write;
use std::time::Instant;

use gaap_autoscaler::sim::csv::{self, CsvSource, Filter};
use gaap_autoscaler::sim::source::{SampleSource, Slots};
use gaap_autoscaler::sim::synthetic::{self, SyntheticSpec, Target};

fn main() {
    let path = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/metrics-8.64M.csv".into()),
    );
    let targets: Vec<Target> = (0..100)
        .map(|i| Target {
            id: format!("link-sim{i:05}"),
            bandwidth: 100,
            concurrent: 5,
        })
        .collect();
    if !path.exists() {
        let spec = SyntheticSpec {
            days: 30,
            ..SyntheticSpec::default()
        };
        let trace = synthetic::generate(
            &spec,
            &targets,
            &["bandwidth".into()],
            &["connections".into()],
        );
        let mut rows: Vec<(i64, &str, &str, f64)> = Vec::new();
        for ((p, s), series) in &trace.series {
            for (t, v) in series.times.iter().zip(&series.values) {
                rows.push((*t, p, s, *v));
            }
        }
        rows.sort_by_key(|r| r.0);
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(out, "{}", csv::HEADER).unwrap();
        for (t, p, s, v) in rows {
            writeln!(out, "{},{p},{s},{v}", t / 1000).unwrap();
        }
    }
    for round in 0..3 {
        // Streaming: every series read into its slot, all but the last sample dropped
        // after each chunk (the replay's own loop, without the replay).
        let t0 = Instant::now();
        let fresh = || {
            let mut slots = Slots::default();
            for t in &targets {
                slots.slot(&t.id, "bandwidth");
                slots.slot(&t.id, "connections");
            }
            slots
        };
        let mut src = CsvSource::open(&path, &Filter::default()).unwrap();
        let mut n = 0usize;
        loop {
            // A chunk read, then dropped (the replay keeps each series' last sample).
            let mut slots = fresh();
            let safe = src.fill(&mut slots, i64::MAX, 1 << 20).unwrap();
            n += slots.buffered();
            if safe == i64::MAX {
                break;
            }
        }
        let stream = t0.elapsed();
        let t1 = Instant::now();
        let (trace, _) = csv::read_file(&path, &Filter::default()).unwrap();
        let memory = t1.elapsed();
        println!(
            "round {round}: streamed {} samples ({n} kept) in {:.3} s; in memory ({} samples, parallel) {:.3} s",
            src.stats().samples,
            stream.as_secs_f64(),
            trace.sample_count(),
            memory.as_secs_f64()
        );
    }
}
