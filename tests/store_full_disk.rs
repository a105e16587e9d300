//! `log list` reads the decision log while its disk is full: reading needs no free space.
//! As root the disk is a 4 MiB tmpfs filled to the last byte; otherwise the data dir is
//! made read-only (which a root process would ignore, hence the mount).

use std::process::Command;
use std::time::Duration;

use gaap_autoscaler::core::{ControllerState, Verdict, decide, fixtures};
use gaap_autoscaler::policy::Mode;
use gaap_autoscaler::store::{DecisionLog, DecisionRecord, Outcome, RecordContext};
use gaap_autoscaler::time::Timestamp;

const BIN: &str = env!("CARGO_BIN_EXE_gaap-autoscaler");
const T0: i64 = 1_795_939_200_000;

fn record(ms: i64, proxy: &str) -> DecisionRecord {
    let now = Timestamp(ms);
    let pol = fixtures::policy();
    let mut px = fixtures::proxy(10, 2);
    px.id = proxy.to_string();
    let ladder = fixtures::ladder();
    let obs = fixtures::observe(100.0, 30_000.0, now - Duration::from_secs(10));
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
            outcome: Outcome::Applied,
            proxy: &px,
            ladder: Some(&ladder),
            observation: &obs,
            policy: &pol,
            note: None,
        },
    )
}

/// Unmounts on drop.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    // SAFETY: reads this process's effective uid.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn log_list_reads_while_the_disk_is_full() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let _mount = if is_root() {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(&disk)
            .status()
            .unwrap();
        assert!(ok.success(), "mount a 4 MiB tmpfs as root");
        Some(Mount(disk.clone()))
    } else {
        None
    };
    let dir = disk.join("data");
    {
        let log = DecisionLog::open(&dir).unwrap();
        for i in 0..20 {
            log.append(&record(T0 + i * 60_000, &format!("link-full{i:04}")))
                .unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(300)); // sled lets go of its lock
    if is_root() {
        // Fill the disk: write until ENOSPC (bounded by the 4 MiB size).
        use std::io::Write;
        let mut f = std::fs::File::create(disk.join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        let mut written = 0usize;
        while written <= 8 << 20 {
            match f.write(&block) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
        let _ = f.sync_all();
        assert!(
            std::fs::write(disk.join("probe"), b"x").is_err() || {
                std::fs::read(disk.join("probe"))
                    .map(|b| b.len())
                    .unwrap_or(0)
                    == 0
            },
            "the disk is full"
        );
    } else {
        use std::os::unix::fs::PermissionsExt;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let mode = if p.is_dir() { 0o500 } else { 0o400 };
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    }
    let out = Command::new(BIN)
        .args(["log", "--data-dir"])
        .arg(&dir)
        .args(["list", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 20, "{stderr}");
}
