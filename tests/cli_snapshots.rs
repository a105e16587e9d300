//! Snapshots of the CLI's plain (non-terminal) output beyond policy diagnostics: the
//! `simulate` report, `log show`, and the error messages of `simulate`, `api` and `run`.
//! Temporary paths are redacted to `[DIR]`, RFC 3339 times to `[TIME]` where they come from
//! the clock (as Cargo's own snapshots do); everything else is compared byte for byte.

mod support;

use std::process::Command;
use std::time::Duration;

use gaap_autoscaler::core::fixtures;
use gaap_autoscaler::store::{DecisionLog, DecisionRecord, Outcome};
use gaap_autoscaler::time::Timestamp;

const BIN: &str = env!("CARGO_BIN_EXE_gaap-autoscaler");

/// stdout, then stderr, then the exit code, with `dir` redacted.
fn run(args: &[&str], dir: &std::path::Path) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .env_remove("TENCENTCLOUD_SECRET_KEY")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("HOME", dir)
        .current_dir(dir)
        .output()
        .expect("run the binary");
    let text = format!(
        "--- stdout\n{}--- stderr\n{}--- exit {}\n",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status.code().unwrap_or(-1)
    );
    text.replace(&dir.display().to_string(), "[DIR]")
}

#[test]
fn simulate_report_of_a_synthetic_day() {
    let dir = tempfile::tempdir().unwrap();
    insta::assert_snapshot!(run(
        &["simulate", "--synthetic", "--days", "1", "--proxies", "2"],
        dir.path()
    ));
}

#[test]
fn simulate_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.csv"),
        "timestamp,proxy_id,signal,value\n2026-01-01T00:00:00Z,link-a,bw,oops\n",
    )
    .unwrap();
    insta::assert_snapshot!(
        "simulate_missing_policies",
        run(&["simulate", "--policies", "nothere"], dir.path())
    );
    insta::assert_snapshot!(
        "simulate_bad_csv",
        run(&["simulate", "--metrics", "bad.csv"], dir.path())
    );
    insta::assert_snapshot!(
        "simulate_missing_csv",
        run(&["simulate", "--metrics", "none.csv"], dir.path())
    );
}

#[test]
fn api_and_run_errors() {
    let dir = tempfile::tempdir().unwrap();
    insta::assert_snapshot!(
        "api_plain_http_off_loopback",
        run(
            &["api", "DescribeProxies", "--endpoint", "http://10.1.2.3"],
            dir.path()
        )
    );
    insta::assert_snapshot!(
        "api_no_credentials",
        run(
            &["api", "DescribeProxies", "--endpoint", "http://127.0.0.1:9"],
            dir.path()
        )
    );
    insta::assert_snapshot!(
        "run_missing_config",
        run(&["run", "--config", "none.toml"], dir.path())
    );
}

/// `log show` of `rec`, read back from a fresh data dir under `dir`.
fn log_show(dir: &std::path::Path, rec: &DecisionRecord) -> String {
    let data = dir.join("data");
    let id = {
        let log = DecisionLog::open(&data).unwrap();
        log.append(rec).unwrap()
    };
    // sled frees its lock a moment after the log is dropped.
    let mut out = String::new();
    for _ in 0..50 {
        out = run(&["log", "show", &id, "--data-dir", "data"], dir);
        if !out.contains("locked") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    out
}

#[test]
fn log_show_of_a_scale_up() {
    let dir = tempfile::tempdir().unwrap();
    let now = Timestamp(1_795_939_200_000);
    let rec = support::scale_up_record(
        now.0,
        &fixtures::proxy(20, 2).id,
        &fixtures::policy().name,
        Outcome::Planned,
    );
    insta::assert_snapshot!(log_show(dir.path(), &rec));
}

/// Readings above the capacity in effect (100 Mbps on 10, 30,000 connections on 2 units):
/// the cap hides the demand, so both dimensions go up at least `max_steps` (2) at once
/// (`data.saturated`), and bandwidth's need (200) is cut to 2 steps by the rate stage.
#[test]
fn log_show_of_a_saturated_scale_up() {
    let dir = tempfile::tempdir().unwrap();
    let now = Timestamp(1_795_939_200_000);
    let rec = support::change_record(
        now.0,
        &fixtures::proxy(10, 2).id,
        &fixtures::policy().name,
        Outcome::Planned,
        (10, 2),
        (100.0, 30_000.0),
    );
    insta::assert_snapshot!(log_show(dir.path(), &rec));
}
