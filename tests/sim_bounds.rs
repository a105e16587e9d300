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
