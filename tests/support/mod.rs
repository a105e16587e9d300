//! Helpers shared by integration tests: `mod support;` in a test file.
#![allow(dead_code)]

pub mod e2e;
pub mod etcd;
pub mod prom;

use std::time::Duration;

use gaap_autoscaler::core::{ControllerState, Verdict, decide, fixtures};
use gaap_autoscaler::policy::Mode;
use gaap_autoscaler::store::{DecisionRecord, Outcome, RecordContext};
use gaap_autoscaler::time::Timestamp;

/// A record of a real decision for `proxy` under `policy` at `ms`: a scale-up logged with
/// `outcome`, from 20 Mbps / 2 units reading 18 Mbps and 18,000 connections (90 %, below
/// the saturation threshold of 0.95 × capacity, so the plain path: 18 / 0.7 = 25.7 → 50
/// Mbps, 18,000 / 7,000 = 2.57 → 5 units).
pub fn scale_up_record(ms: i64, proxy: &str, policy: &str, outcome: Outcome) -> DecisionRecord {
    change_record(ms, proxy, policy, outcome, (20, 2), (18.0, 18_000.0))
}

/// A record of the change decided for `proxy` (at `capacity`: Mbps, units) under the
/// fixture policy named `policy` at `ms`, reading `demand` (Mbps, connections) 10 s
/// earlier, logged with `outcome`. Panics unless the decision is a change.
pub fn change_record(
    ms: i64,
    proxy: &str,
    policy: &str,
    outcome: Outcome,
    capacity: (u32, u32),
    demand: (f64, f64),
) -> DecisionRecord {
    let now = Timestamp(ms);
    let mut pol = fixtures::policy();
    pol.name = policy.to_string();
    let mut px = fixtures::proxy(capacity.0, capacity.1);
    px.id = proxy.to_string();
    let ladder = fixtures::ladder();
    let obs = fixtures::observe(demand.0, demand.1, now - Duration::from_secs(10));
    let d = decide(
        &pol,
        &px,
        Some(&ladder),
        &obs,
        &ControllerState::default(),
        now,
    );
    assert_eq!(d.verdict, Verdict::Change);
    DecisionRecord::from_decision(
        &d,
        &RecordContext {
            mode: Mode::Live,
            outcome,
            proxy: &px,
            ladder: Some(&ladder),
            observation: &obs,
            policy: &pol,
            note: None,
        },
    )
}

/// A tmpfs of `size` (e.g. "2m") mounted on `dir` (needs root), unmounted on drop.
pub struct Mount(std::path::PathBuf);

impl Mount {
    pub fn tmpfs(dir: &std::path::Path, size: &str) -> Mount {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mount a {size} tmpfs on {dir:?}: run as root");
        Mount(dir.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Writes `dir/filler` until the disk is full (at most `limit` bytes).
pub fn fill_disk(dir: &std::path::Path, limit: usize) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![7u8; 64 * 1024];
    let mut written = 0usize;
    while written <= limit {
        match f.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n,
        }
    }
    let _ = f.sync_all();
}
