//! `simulate` bounds its range before sizing anything by it: one CSV line dated 2100
//! is a clear error, not gigabytes of evaluation times. The child runs under a 2 GiB
//! address-space limit, so a regression fails fast instead of exhausting the machine.

use std::process::Command;

fn simulate_limited(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gaap-autoscaler"));
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let lim = libc::rlimit {
                rlim_cur: 2 << 30,
                rlim_max: 2 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    cmd.arg("simulate")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run the binary")
}

#[test]
fn a_sample_dated_2100_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("far.csv");
    let mut csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/traces/step.csv"
    ))
    .unwrap();
    // 2100-01-01T00:00:00Z, for a proxy and signal the fleet and policies know.
    csv.push_str("4102444800,link-kicu7m5b,bandwidth,20.0\n");
    std::fs::write(&path, csv).unwrap();
    let out = simulate_limited(&["--metrics", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("at most 400 days"), "{stderr}");
    assert!(stderr.contains("--start and --end"), "{stderr}");

    // The same file with a range inside it runs.
    let out = simulate_limited(&[
        "--metrics",
        path.to_str().unwrap(),
        "--end",
        "2026-11-03T00:00:00Z",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A file grouped by proxy (not sorted by time) whose last series ends before the
/// others: its last lines are not the end of the data. `--start` inside the longer
/// series' range runs (it was refused as "after --end", the end read from the file's
/// last lines) and replays that range.
#[test]
fn start_inside_an_unsorted_files_range_runs_even_when_its_last_series_ends_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grouped.csv");
    let t0 = 1_793_606_400i64; // 2026-11-02T08:00:00Z
    let mut csv = String::from("timestamp,proxy_id,signal,value\n");
    // Two days of link-kicu7m5b, then one day of link-3n9x1q7d.
    for (id, minutes) in [("link-kicu7m5b", 2 * 1440), ("link-3n9x1q7d", 1440)] {
        for m in 0..minutes {
            let t = t0 + 60 * m;
            csv.push_str(&format!(
                "{t},{id},bandwidth,20.0\n{t},{id},connections,8000\n"
            ));
        }
    }
    std::fs::write(&path, csv).unwrap();
    let out = simulate_limited(&[
        "--metrics",
        path.to_str().unwrap(),
        "--start",
        "2026-11-03T14:00:00Z", // after the short series' last line (11-03T07:59)
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary = &doc["summary"];
    assert_eq!(summary["start"], "2026-11-03T14:00:00Z", "{summary}");
    assert_eq!(summary["end"], "2026-11-04T07:59:00Z", "{summary}");
    let kicu = doc["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["proxy_id"] == "link-kicu7m5b")
        .expect("the longer series is replayed");
    assert!(kicu["steps"].as_u64().unwrap() > 0, "{kicu}");
}
