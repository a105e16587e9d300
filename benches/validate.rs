//! `validate` on generated 10 MB policy files (issue 9 item 10): the three shapes that
//! used to take minutes (650k proxy ids, 349k wrong-typed values, 349k unknown keys) and
//! a valid big policy (140k windows). Each iteration is what `validate` runs on the whole
//! text, `check_policy_capped(.., MAX_PRINTED)`: parse, stage 1 (every serde error),
//! stage 2 (every check), the first 100 diagnostics built and placed, the rest counted.
//! And 10 MB fleet files: 90k proxies checked against a policy that lists them all
//! (`check_fleet`, `check_policy`, `fleet_checks`: the id and selector lookups), and 100k
//! ladder rows (the duplicate-row check).
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use gaap_autoscaler::fleet::check_fleet;
use gaap_autoscaler::policy::cmd::MAX_PRINTED;
use gaap_autoscaler::policy::{check_policy, check_policy_capped, fleet_checks};
use std::fmt::Write;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

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
    // Seconds per iteration: the same count in each sample (10 in all at the least).
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.measurement_time(Duration::from_secs(20));
    for (name, text, want_errors) in files() {
        // The bench measures the real work: check once that it finds what it should.
        let started = Instant::now();
        let (_, kept, omitted) = check_policy_capped(&text, Path::new("big.toml"), MAX_PRINTED);
        let once = started.elapsed();
        let errors = kept.iter().filter(|d| d.is_error()).count() + omitted.errors;
        assert!(errors >= want_errors, "{name}: {errors} errors");
        eprintln!(
            "{name}: {:.1} MB, {} diagnostics, one run {:.2} s",
            text.len() as f64 / 1e6,
            kept.len() + omitted.total(),
            once.as_secs_f64()
        );
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| check_policy_capped(black_box(&text), Path::new("big.toml"), MAX_PRINTED))
        });
    }
    g.finish();
}

/// A 10 MB fleet of `n` proxies, and a policy listing every one of them.
fn fleet_files(n: usize) -> (String, String) {
    let mut fleet = String::from(
        "[[ladder]]\naccess_region = \"Guangzhou\"\nbandwidth = [10, 50, 100, 500]\nconcurrent = [2, 5]\n",
    );
    let mut policy = String::from("name = \"all\"\nproxies = [");
    for i in 0..n {
        write!(
            fleet,
            "[[proxy]]\nid = \"link-{i:08x}\"\naccess_region = \"Guangzhou\"\nreal_server_region = \"Shanghai\"\nbandwidth = 100\nconcurrent = 2\n"
        )
        .unwrap();
        write!(policy, "\"link-{i:08x}\", ").unwrap();
    }
    policy.push_str("]\n");
    policy.push_str(TAIL);
    (fleet, policy)
}

fn bench_fleet(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate_10mb_fleet");
    // Seconds per iteration: the same count in each sample (10 in all at the least).
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.measurement_time(Duration::from_secs(20));
    let (fleet, policy) = fleet_files(90_000);
    // The work is real: every proxy is found, no claim is reported.
    let started = Instant::now();
    let (f, d) = check_fleet(&fleet, Path::new("fleet.toml"));
    let f = f.unwrap_or_else(|| panic!("{:?}", &d[..d.len().min(3)]));
    assert_eq!(f.proxies.len(), 90_000);
    let (p, d) = check_policy(&policy, Path::new("all.toml"));
    let p = p.unwrap_or_else(|| panic!("{:?}", &d[..d.len().min(3)]));
    assert!(fleet_checks(std::slice::from_ref(&p), &f).is_empty());
    let once = started.elapsed();
    eprintln!(
        "fleet: {:.1} MB, policy {:.1} MB, one run {:.2} s",
        fleet.len() as f64 / 1e6,
        policy.len() as f64 / 1e6,
        once.as_secs_f64()
    );
    g.throughput(Throughput::Bytes((fleet.len() + policy.len()) as u64));
    g.bench_function("proxies_90k_and_a_policy_listing_them", |b| {
        b.iter(|| {
            let (f, _) = check_fleet(black_box(&fleet), Path::new("fleet.toml"));
            let (p, _) = check_policy(black_box(&policy), Path::new("all.toml"));
            fleet_checks(std::slice::from_ref(&p.unwrap()), &f.unwrap())
        })
    });

    let mut ladders = String::from(
        "[[proxy]]\nid = \"link-00000000\"\naccess_region = \"region-000000\"\nreal_server_region = \"Shanghai\"\nbandwidth = 10\nconcurrent = 2\n",
    );
    for i in 0..100_000 {
        write!(
            ladders,
            "[[ladder]]\naccess_region = \"region-{i:06}\"\nbandwidth = [10, 50, 100]\nconcurrent = [2, 5]\n"
        )
        .unwrap();
    }
    let started = Instant::now();
    let (f, d) = check_fleet(&ladders, Path::new("ladders.toml"));
    let once = started.elapsed();
    assert_eq!(
        f.map(|f| f.ladders.len()),
        Some(100_000),
        "{:?}",
        &d[..d.len().min(3)]
    );
    eprintln!(
        "ladders: {:.1} MB, one run {:.2} s",
        ladders.len() as f64 / 1e6,
        once.as_secs_f64()
    );
    g.throughput(Throughput::Bytes(ladders.len() as u64));
    g.bench_function("ladder_rows_100k", |b| {
        b.iter(|| check_fleet(black_box(&ladders), Path::new("ladders.toml")))
    });
    g.finish();
}

criterion_group!(benches, bench, bench_fleet);
criterion_main!(benches);
