//! `validate` on generated 10 MB policy files (issue 9 item 10): the three shapes that
//! used to take minutes (650k proxy ids, 349k wrong-typed values, 349k unknown keys) and
//! a valid big policy (140k windows). Each iteration is `check_policy` on the whole text:
//! parse, stage 1 (every serde error), stage 2 (every check), places, sorting.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gaap_autoscaler::policy::check_policy;
use std::fmt::Write;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

const TAIL: &str = "interval = \"30s\"\n[signals.bandwidth]\nquery = 'max by (channel_id) (qce_qaap_outbandwidth_max)'\n[bandwidth]\nsignal = \"bandwidth\"\ntarget_utilization = 0.7\nmin = 10\nmax = 500\n";

/// The generated files (name, text, the errors `validate` must find at least).
fn files() -> Vec<(&'static str, String, usize)> {
    let mut ids = String::from("name = \"ids\"\nproxies = [");
    for i in 0..650_000 {
        write!(ids, "\"link-{i:08x}\", ").unwrap();
    }
    ids.push_str("]\n");
    ids.push_str(TAIL);

    let mut types = String::from("name = \"types\"\nproxies = [\"link-aaaaaaaa\"]\n");
    types.push_str(TAIL);
    for i in 0..349_000 {
        write!(types, "[signals.s{i:06}]\nquery = {i}\n").unwrap();
    }

    let mut keys = String::from("name = \"keys\"\nproxies = [\"link-aaaaaaaa\"]\n");
    for i in 0..349_000 {
        writeln!(keys, "unknown_key_number_{i:06} = 1").unwrap();
    }
    keys.push_str(TAIL);

    let mut valid = String::from("name = \"valid\"\nproxies = [\"link-aaaaaaaa\"]\n");
    valid.push_str(TAIL);
    for i in 0..140_000 {
        write!(
            valid,
            "[[window]]\ncron = \"0 0 {} * * Mon-Fri\"\nduration = \"1h\"\nbandwidth_min = 20\n",
            i % 24
        )
        .unwrap();
    }
    vec![
        ("proxy_ids_650k", ids, 0),
        ("wrong_types_349k", types, 349_000),
        ("unknown_keys_349k", keys, 349_000),
        ("valid_140k_windows", valid, 0),
    ]
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate_10mb");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for (name, text, want_errors) in files() {
        // The bench measures the real work: check once that it finds what it should.
        let (_, diags) = check_policy(&text, Path::new("big.toml"));
        let errors = diags.iter().filter(|d| d.is_error()).count();
        assert!(errors >= want_errors, "{name}: {errors} errors");
        eprintln!(
            "{name}: {:.1} MB, {} diagnostics",
            text.len() as f64 / 1e6,
            diags.len()
        );
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| check_policy(black_box(&text), Path::new("big.toml")))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
