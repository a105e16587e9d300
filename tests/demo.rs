//! `scripts/demo.sh` end to end, as a newcomer runs it: a real Prometheus backfilled from
//! `simulate --export-openmetrics`, the sandbox and the daemon on free loopback ports, and
//! at least one change applied at the sandbox (the script's own check, from the sandbox's
//! call record, plus its printed list of applied calls). Bounded: DEMO_DURATION=60.
//! Needs prometheus, promtool, python3 and curl (.ci/run installs them); a missing one
//! fails this test with the script's message.

use std::process::Command;

#[test]
fn the_demo_applies_changes_at_the_sandbox() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("DEMO_DURATION", "60")
        .env("GAAP_AUTOSCALER", env!("CARGO_BIN_EXE_gaap-autoscaler"))
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .env_remove("TENCENTCLOUD_SECRET_KEY")
        .env_remove("DEMO_KEEP")
        .output()
        .expect("run scripts/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo.sh failed ({:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let applied: usize = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("demo: ")?
                .strip_suffix(" change(s) applied at the sandbox")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no summary line\n{stdout}"));
    assert!(applied >= 1, "{stdout}");
    let listed = stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("applied "))
        .count();
    assert_eq!(listed, applied, "{stderr}");
    // The decisions were shown live: log list printed an applied change, its values
    // moving (its reasons vary with the time of day: in business hours the window's
    // bounds.min comes first and scale.up may be among the "+N more").
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(" applied ") && l.contains('→')),
        "{stdout}"
    );
}
