//! `log list` reads the decision log while its disk is full: reading needs no free space.
//! As root the disk is a 4 MiB tmpfs filled to the last byte; otherwise the data dir is
//! made read-only (which a root process would ignore, hence the mount).

use std::process::Command;
use std::time::Duration;

use gaap_autoscaler::core::fixtures;
use gaap_autoscaler::store::{DecisionLog, Outcome};

mod support;
use support::scale_up_record as record;

const BIN: &str = env!("CARGO_BIN_EXE_gaap-autoscaler");
const T0: i64 = 1_795_939_200_000;

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
        Some(support::Mount::tmpfs(&disk, "4m"))
    } else {
        None
    };
    let dir = disk.join("data");
    {
        let log = DecisionLog::open(&dir).unwrap();
        for i in 0..20 {
            log.append(&record(
                T0 + i * 60_000,
                &format!("link-full{i:04}"),
                &fixtures::policy().name,
                Outcome::Applied,
            ))
            .unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(300)); // sled lets go of its lock
    if is_root() {
        // Fill the disk: write until ENOSPC (bounded by the 4 MiB size).
        support::fill_disk(&disk, 8 << 20);
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
