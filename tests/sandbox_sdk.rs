//! The official Tencent Cloud Python SDK, unchanged, against the sandbox binary: every
//! action, a bad key, a reused ClientToken, an invalid bandwidth and a burst over 20/s.
//! Needs the SDK in `target/pyenv` (run `scripts/setup-python-sdk.sh`) or an interpreter
//! that has it in `GAAP_SDK_PYTHON`. Without it this test fails; it never skips.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const ID: &str = "AKIDsdkCheck00000000000000000000";
const KEY: &str = "sdkCheckSecretKey0000000000000000";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> PathBuf {
    let py = std::env::var_os("GAAP_SDK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python")
        });
    assert!(
        py.exists(),
        "no Python interpreter at {}: run scripts/setup-python-sdk.sh (or set GAAP_SDK_PYTHON)",
        py.display()
    );
    let probe = Command::new(&py)
        .args(["-c", "import tencentcloud.gaap.v20180529.gaap_client"])
        .output()
        .expect("run the Python interpreter");
    assert!(
        probe.status.success(),
        "the Tencent Cloud Python SDK is not installed for {}: run scripts/setup-python-sdk.sh\n{}",
        py.display(),
        String::from_utf8_lossy(&probe.stderr)
    );
    py
}

#[test]
fn official_python_sdk_against_the_sandbox() {
    let py = python();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gaap-autoscaler"))
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--secret-id",
            ID,
            "--secret-key",
            KEY,
            "--adjusting",
            "3s",
            // Time moves only when sdk_check.py says so: the burst below is exact.
            "--manual-clock",
        ])
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .env_remove("TENCENTCLOUD_SECRET_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the sandbox");
    let stdout = child.stdout.take().unwrap();
    let guard = Killed(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the sandbox did not print its address in 30 s");
    assert!(
        !line.is_empty(),
        "the sandbox exited before printing its address (its stderr is above)"
    );
    let addr = line
        .trim()
        .strip_prefix("sandbox listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line from the sandbox: {line:?}"))
        .to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    assert_ne!(port, "0", "the real port is printed");

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_check.py");
    let out = Command::new(&py)
        .arg(&script)
        .args([&port, ID, KEY])
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .expect("run sdk_check.py");
    drop(guard);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sdk_check.py failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let last: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert!(last["burst_limited"].as_u64().unwrap() >= 1);
    assert!(last["calls"].as_u64().unwrap() >= 30);
}
