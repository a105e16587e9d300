//! The official Tencent Cloud Node.js SDK (`tencentcloud-sdk-nodejs` from npm, unchanged)
//! against the sandbox binary, the mirror of `tests/sandbox_sdk.rs`: every action, the error
//! cases (bad key, unknown SecretId, reused ClientToken, invalid bandwidth, Scalarable 0,
//! unknown proxy, unknown DestRegion, ProxyIds with InstanceIds, signature v1) and a burst
//! over 20/s, with the endpoint `127.0.0.1:PORT` exactly as a user writes it. Needs Node
//! (Debian `nodejs`) and the SDK in `tests/node/node_modules` (run
//! `scripts/setup-node-sdk.sh`). Without them this test fails; it never skips.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const ID: &str = "AKIDnodeCheck0000000000000000000";
const KEY: &str = "nodeCheckSecretKey000000000000000";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

fn check_node() {
    let probe = Command::new("node")
        .current_dir(node_dir())
        .args([
            "-e",
            "require('tencentcloud-sdk-nodejs/tencentcloud/services/gaap/v20180529/gaap_client')",
        ])
        .output();
    match probe {
        Err(e) => panic!("cannot run `node` ({e}): apt-get install -y nodejs npm"),
        Ok(out) => assert!(
            out.status.success(),
            "the Tencent Cloud Node.js SDK is not installed in tests/node: run scripts/setup-node-sdk.sh\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn official_node_sdk_against_the_sandbox() {
    check_node();
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
    let addr = line
        .trim()
        .strip_prefix("sandbox listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line from the sandbox: {line:?}"))
        .to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    assert_ne!(port, "0", "the real port is printed");

    let out = Command::new("node")
        .current_dir(node_dir())
        .arg("sdk_check.js")
        .args([&port, ID, KEY])
        // The SDK sends through `http_proxy` when it is set.
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .output()
        .expect("run sdk_check.js");
    drop(guard);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sdk_check.js failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let last: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert!(last["burst_limited"].as_u64().unwrap() >= 1);
    assert!(last["calls"].as_u64().unwrap() >= 35);
}
