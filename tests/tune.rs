//! `tune` end to end through the binary: the frontier, the change budget, the written
//! policies (they validate and `simulate` reproduces their in-sample figures), same input
//! same output, a trace with a known best stabilization window, and bad input.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn bin(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gaap-autoscaler"))
        .args(args)
        .current_dir(dir)
        .env_remove("GAAP_AUTOSCALER_LOG")
        .output()
        .expect("run the binary")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

const FLEET: &str = r#"
[[ladder]]
access_region = "Guangzhou"
bandwidth = [10, 20, 50, 100, 200]
concurrent = [2, 5, 10]

[[proxy]]
id = "link-aaaa0001"
access_region = "Guangzhou"
real_server_region = "Shanghai"
bandwidth = 200
concurrent = 2
"#;

/// Scale-down stabilization 60m; everything else fixed (no flap budget: it would
/// lengthen short windows by itself).
const DIPS: &str = r#"# dips: the policy of the known-best test.
name = "dips"
proxies = ["link-aaaa0001"]
interval = "1m"

[signals.bandwidth]
query = 'max by (channel_id) (qce_qaap_outbandwidth_max)'

[bandwidth]
signal = "bandwidth"
target_utilization = 0.5
min = 10
max = 200

[behavior.scale_up]
tolerance = 0.05
stabilization = "0s"
max_steps = 2
cooldown = "1m"

[behavior.scale_down]
tolerance = 0.1
stabilization = "60m"                  # the key under test
max_steps = 6
cooldown = "0s"
flap_budget = "off"
"#;

/// Four days at 1-minute samples. Each day: a 3-hour lull (4 Mbps) from midnight, a
/// gentle ramp to 60 Mbps over the next hour, then 60 Mbps with an 8-minute dip to
/// 4 Mbps every two hours that ends at once. A scale-down window shorter than the dips
/// (0s, 5m) scales down into them and is caught short when they end (under-provisioned);
/// 10m ignores the dips yet releases the lull soonest of all windows that do: the
/// cheapest window that is never short.
fn dips_csv() -> String {
    let t0: i64 = 1_793_577_600; // 2026-11-02T00:00:00Z
    let mut s = String::from("timestamp,proxy_id,signal,value\n");
    for m in 0..4 * 1440i64 {
        let minute = m % 1440;
        let v = if minute < 180 {
            4.0
        } else if minute < 240 {
            4.0 + 56.0 * (minute - 180) as f64 / 60.0
        } else if minute >= 300 && (minute - 300) % 120 < 8 {
            4.0
        } else {
            60.0
        };
        s.push_str(&format!("{},link-aaaa0001,bandwidth,{v}\n", t0 + m * 60));
    }
    s
}

fn setup_dips(dir: &Path) {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("fleet.toml"), FLEET).unwrap();
    std::fs::write(dir.join("policies/dips.toml"), DIPS).unwrap();
    std::fs::write(dir.join("trace.csv"), dips_csv()).unwrap();
}

/// (under %, spend, changes per proxy-day) of a frontier row.
fn axes(p: &Value) -> [f64; 3] {
    figures(&p["figures"])
}

/// The same of a bare figures object.
fn figures(f: &Value) -> [f64; 3] {
    let spend = f
        .get("cost")
        .and_then(Value::as_f64)
        .unwrap_or_else(|| f["footprint_mbps_hours"].as_f64().unwrap());
    [
        f["under_provisioned_pct"].as_f64().unwrap(),
        spend,
        f["changes_per_proxy_day"].as_f64().unwrap(),
    ]
}

/// The frontier's figures: the three minimized ones and the flaps.
fn with_flaps(p: &Value) -> [f64; 4] {
    let [u, s, c] = axes(p);
    [u, s, c, p["figures"]["flapping"].as_f64().unwrap()]
}

fn dominates(a: [f64; 4], b: [f64; 4]) -> bool {
    a.iter().zip(&b).all(|(x, y)| x <= y) && a.iter().zip(&b).any(|(x, y)| x < y)
}

#[test]
fn a_trace_with_a_known_best_window_is_tuned_to_it() {
    let dir = tempfile::tempdir().unwrap();
    setup_dips(dir.path());
    let out = bin(
        &[
            "tune",
            "--policies",
            "policies",
            "--fleet",
            "fleet.toml",
            "--metrics",
            "trace.csv",
            "--keys",
            "behavior.scale_down.stabilization",
            "--out",
            "tuned",
            "--json",
        ],
        dir.path(),
    );
    let doc = json(&out);
    let g = &doc["groups"][0];
    assert_eq!(
        g["tuned_keys"],
        serde_json::json!(["behavior.scale_down.stabilization"])
    );
    assert_eq!(
        g["recommended"]["changed"]["behavior.scale_down.stabilization"], "10m",
        "{g:#}"
    );
    // The shorter windows are short of capacity when a dip ends; the current one is not.
    let frontier = g["frontier"].as_array().unwrap();
    let short = frontier
        .iter()
        .find(|p| p["settings"]["behavior.scale_down.stabilization"] == "0s")
        .expect("0s is on the frontier (cheapest)");
    assert!(axes(short)[0] > 0.0);
    assert_eq!(figures(&g["recommended"]["in_sample"])[0], 0.0);
    // The written file: only that key changed, its comment kept, under a header.
    let text = std::fs::read_to_string(dir.path().join("tuned/dips.toml")).unwrap();
    assert!(text.starts_with("# tune: "), "{text}");
    assert!(text.contains(
        "stabilization = \"10m\"                  # tuned from \"60m\": the key under test"
    ));
    let body = text.split_once("\n\n").unwrap().1;
    let changed: Vec<(&str, &str)> = DIPS
        .lines()
        .zip(body.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(DIPS.lines().count(), body.lines().count());
    // The held-out day bears it out: no warnings.
    assert_eq!(doc["warnings"], serde_json::json!([]));
}

const SYNTH: &[&str] = &[
    "--synthetic",
    "--days",
    "1",
    "--proxies",
    "5",
    "--seed",
    "7",
];

fn tune_synthetic(dir: &Path, out: &str, extra: &[&str]) -> Output {
    let mut args = vec!["tune"];
    args.extend_from_slice(SYNTH);
    args.extend_from_slice(&["--out", out, "--json"]);
    args.extend_from_slice(extra);
    bin(&args, dir)
}

#[test]
fn frontier_budget_files_and_determinism() {
    let dir = tempfile::tempdir().unwrap();
    let budget = "4";
    let keys = "behavior.scale_up.tolerance,behavior.scale_down.stabilization,behavior.scale_down.cooldown,bandwidth.target_utilization";
    let first = tune_synthetic(
        dir.path(),
        "a",
        &["--budget-changes", budget, "--keys", keys],
    );
    let doc = json(&first);
    let groups = doc["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "web and batch");
    for g in groups {
        // No frontier point dominates another.
        let pts: Vec<[f64; 4]> = g["frontier"]
            .as_array()
            .unwrap()
            .iter()
            .map(with_flaps)
            .collect();
        assert!(pts.len() >= 2, "{}", g["name"]);
        for (i, a) in pts.iter().enumerate() {
            for (j, b) in pts.iter().enumerate() {
                assert!(i == j || !dominates(*a, *b), "{} dominates {}", i, j);
            }
        }
        // The recommendation is within the change budget whenever a frontier point is
        // that under-provisions no more than the current policy (balanced's two limits).
        let rec = figures(&g["recommended"]["in_sample"]);
        let current = axes(&g["current"]["in_sample"]);
        if pts.iter().any(|p| p[2] <= 4.0 && p[0] <= current[0]) {
            assert!(rec[2] <= 4.0, "{}: {rec:?}", g["name"]);
            assert_eq!(g["recommended"]["constraints_met"], true);
        }
        // It is on the frontier, marked.
        assert!(
            g["frontier"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["recommended"] == true && axes(p) == rec)
        );
        assert!(g["recommended"]["holdout"]["under_provisioned_pct"].is_f64());
        assert!(g["reference"]["autopilot"]["figures"].is_object());
    }

    // The written policies validate...
    let v = bin(&["validate", "a"], dir.path());
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    // ...and `simulate` over the in-sample range reproduces the reported figures.
    let range = &doc["range"]["in_sample"];
    let mut args = vec!["simulate", "--policies", "a", "--json"];
    args.extend_from_slice(SYNTH);
    let (s, e) = (
        range["start"].as_str().unwrap(),
        range["end"].as_str().unwrap(),
    );
    args.extend_from_slice(&["--start", s, "--end", e]);
    let sim = json(&bin(&args, dir.path()));
    let after = &doc["fleet"]["in_sample"]["after"];
    for k in [
        "under_provisioned_pct",
        "footprint_mbps_hours",
        "changes",
        "changes_per_proxy_day",
        "flapping",
    ] {
        let (a, b) = (
            after[k].as_f64().unwrap(),
            sim["summary"][k].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            "{k}: tune {a}, simulate {b}"
        );
    }
    // The before figures are the policies as they were.
    let before_sim = {
        let mut args = vec!["simulate", "--json"];
        args.extend_from_slice(SYNTH);
        args.extend_from_slice(&["--start", s, "--end", e]);
        json(&bin(&args, dir.path()))
    };
    assert_eq!(
        doc["fleet"]["in_sample"]["before"]["footprint_mbps_hours"],
        before_sim["summary"]["footprint_mbps_hours"]
    );

    // Same seed and input: the same output and the same files.
    let second = tune_synthetic(
        dir.path(),
        "b",
        &["--budget-changes", budget, "--keys", keys],
    );
    let strip = |o: &Output| String::from_utf8_lossy(&o.stdout).replace("\"b/", "\"a/");
    assert_eq!(strip(&first), strip(&second));
    for f in ["web.toml", "batch.toml"] {
        assert_eq!(
            std::fs::read(dir.path().join("a").join(f)).unwrap(),
            std::fs::read(dir.path().join("b").join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn by_proxy_writes_one_policy_per_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let doc = json(&tune_synthetic(
        dir.path(),
        "p",
        &[
            "--by",
            "proxy",
            "--keys",
            "behavior.scale_down.stabilization",
            "--reference",
            "none",
        ],
    ));
    let groups = doc["groups"].as_array().unwrap();
    // The fifth proxy cannot be resized (Scalarable 0): no policy of its own, said so.
    assert_eq!(groups.len(), 4);
    assert!(
        doc["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("link-legacy01 (policy `web`) cannot be resized")),
        "{}",
        doc["warnings"]
    );
    for g in groups {
        assert_eq!(g["proxies"].as_array().unwrap().len(), 1);
        assert!(g["frontier"].as_array().is_some_and(|f| !f.is_empty()));
    }
    let v = bin(&["validate", "p"], dir.path());
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    let names: Vec<String> = std::fs::read_dir(dir.path().join("p"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"batch-link-fr5t0w2e.toml".to_string()),
        "{names:?}"
    );
}

#[test]
fn bad_input_exits_1_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    setup_dips(dir.path());
    std::fs::create_dir_all(dir.path().join("nobody")).unwrap();
    std::fs::write(
        dir.path().join("nobody/dips.toml"),
        DIPS.replace("link-aaaa0001", "link-zzzz9999"),
    )
    .unwrap();
    let base = ["tune", "--fleet", "fleet.toml", "--metrics", "trace.csv"];
    // (extra args, part of the message)
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--policies",
                "policies",
                "--out",
                "o",
                "--start",
                "2026-11-05T00:00:00Z",
                "--end",
                "2026-11-04T00:00:00Z",
            ],
            "the range is empty",
        ),
        (
            &[
                "--policies",
                "policies",
                "--out",
                "o",
                "--start",
                "2026-11-10T00:00:00Z",
                "--end",
                "2026-11-11T00:00:00Z",
            ],
            "the range is empty: no sample between",
        ),
        (
            &[
                "--policies",
                "policies",
                "--out",
                "o",
                "--start",
                "2026-11-02T00:00:00Z",
                "--end",
                "2026-11-02T01:30:00Z",
            ],
            "too little history for the holdout",
        ),
        (
            &["--policies", "nobody", "--out", "o"],
            "policy `dips` has nothing to tune: it selects no proxy of the fleet",
        ),
        (
            &[
                "--policies",
                "policies",
                "--out",
                "o",
                "--keys",
                "predictive.quantile",
            ],
            "policy `dips` has nothing to tune: none of the keys asked for applies",
        ),
        (
            &["--policies", "policies", "--out", "policies"],
            "is the policies directory",
        ),
        (&["--out", "policies"], "is the policies directory"),
        (
            &["--policies", "policies/dips.toml", "--out", "policies"],
            "is the policies directory",
        ),
        (
            &["--policies", "policies", "--out", "o", "--holdout", "95%"],
            "--holdout",
        ),
        (
            &[
                "--policies",
                "policies",
                "--out",
                "o",
                "--keys",
                "behavior.nope",
            ],
            "unknown key",
        ),
    ];
    for (extra, want) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let out = bin(&args, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
    }
    // Nothing was written over the policies.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("policies/dips.toml")).unwrap(),
        DIPS
    );
}

#[test]
fn hold_and_worth_are_tuned_validly() {
    let dir = tempfile::tempdir().unwrap();
    let keys = "bandwidth.target_utilization,bandwidth.hold_utilization,bandwidth.change_worth,concurrent.hold_utilization,concurrent.change_worth";
    let doc = json(&tune_synthetic(dir.path(), "a", &["--keys", keys]));
    let tuned = |doc: &Value, name: &str| {
        doc["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .map(|g| g["tuned_keys"].clone())
            .unwrap()
    };
    // Without a price no concurrent key; a step-rule dimension (batch) has no hold.
    assert_eq!(
        tuned(&doc, "web"),
        serde_json::json!([
            "bandwidth.target_utilization",
            "bandwidth.hold_utilization",
            "bandwidth.change_worth"
        ])
    );
    assert_eq!(
        tuned(&doc, "batch"),
        serde_json::json!(["bandwidth.change_worth"])
    );
    // Two passes for web: the target, then the release keys from the target chosen.
    let web = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "web")
        .unwrap();
    let passes = web["passes"].as_array().unwrap();
    assert_eq!(passes.len(), 2, "{}", web["passes"]);
    assert_eq!(
        passes[0]["keys"],
        serde_json::json!(["bandwidth.target_utilization"])
    );
    assert_eq!(passes[0]["from"], serde_json::json!({}));
    assert_eq!(
        passes[1]["keys"],
        serde_json::json!(["bandwidth.hold_utilization", "bandwidth.change_worth"])
    );
    let replayed: u64 = passes.iter().map(|p| p["replayed"].as_u64().unwrap()).sum();
    assert_eq!(Some(replayed), web["candidates_replayed"].as_u64());
    // No candidate holds peaks below its own target (null: at the target).
    for g in doc["groups"].as_array().unwrap() {
        for p in g["frontier"].as_array().unwrap() {
            let s = &p["settings"];
            if let (Some(h), Some(t)) = (
                s["bandwidth.hold_utilization"].as_f64(),
                s["bandwidth.target_utilization"].as_f64(),
            ) {
                assert!(h >= t, "{s}");
            }
        }
    }
    let v = bin(&["validate", "a"], dir.path());
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));

    // With a price table the concurrent keys are tuned too.
    let prices = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/prices-daily.toml");
    let doc = json(&tune_synthetic(
        dir.path(),
        "b",
        &["--keys", keys, "--prices", prices],
    ));
    assert_eq!(
        tuned(&doc, "web"),
        serde_json::json!([
            "bandwidth.target_utilization",
            "bandwidth.hold_utilization",
            "bandwidth.change_worth",
            "concurrent.hold_utilization",
            "concurrent.change_worth"
        ])
    );
    assert_eq!(
        tuned(&doc, "batch"),
        serde_json::json!(["bandwidth.change_worth", "concurrent.change_worth"])
    );
    let v = bin(&["validate", "b"], dir.path());
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}
