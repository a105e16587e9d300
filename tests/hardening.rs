//! The daemon's process and files: core dumps disabled in the running daemon, the data
//! dir owner-only. Loopback only; every wait bounded.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gaap_autoscaler::store::DecisionLog;

const BIN: &str = env!("CARGO_BIN_EXE_gaap-autoscaler");

const POLICY: &str = r#"
name = "hardening"
select = { tags = { autoscale = "e2e" } }
interval = "1s"

[signals.bandwidth]
query = 'max by (channel_id) (qce_qaap_outbandwidth_max)'
proxy_label = "channel_id"

[bandwidth]
signal = "bandwidth"
target_utilization = 0.7
min = 10
max = 500
"#;

/// A loopback port with nothing listening on it (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_running_daemon_cannot_dump_core() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/p.toml"), POLICY).unwrap();
    let config = dir.path().join("gaap-autoscaler.toml");
    // Nothing answers at either endpoint: the daemon starts and keeps trying.
    std::fs::write(
        &config,
        format!(
            "[tencentcloud]\nendpoint = \"http://127.0.0.1:{}\"\n[prometheus]\nurl = \"http://127.0.0.1:{}\"\n[engine]\npolicies = \"policies\"\ndata_dir = \"data\"\nlisten = \"127.0.0.1:0\"\n",
            closed_port(),
            closed_port()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    // Start the daemon allowed to dump core (soft limit raised to the hard one), so the
    // test shows what the daemon itself does, whatever the shell's `ulimit -c`.
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_CORE, &mut lim);
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_CORE, &lim);
            Ok(())
        });
    }
    let mut child = cmd
        .args(["run", "--config", config.to_str().unwrap()])
        .current_dir(dir.path())
        .env("TENCENTCLOUD_SECRET_ID", "AKIDhardeningTestId0000000000000")
        .env("TENCENTCLOUD_SECRET_KEY", "hardeningTestKey00000000000000")
        .env_remove("TENCENTCLOUD_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (at most 30 s) for the listening banner: by then `run` is past its start-up.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let up = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains("listening on") => break true,
            Ok(l) => seen.push(l),
            Err(_) => break false,
        }
    };
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id()));
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "the daemon did not start:\n{}", seen.join("\n"));
    let limits = limits.unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_else(|| panic!("no core limit in {limits}"));
    let fields: Vec<&str> = core.split_whitespace().collect();
    // "Max core file size  <soft>  <hard>  bytes"
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
    // Not listening on loopback would have warned; this one is loopback.
    assert!(
        !seen.iter().any(|l| l.contains("not loopback")),
        "{}",
        seen.join("\n")
    );
}

#[test]
fn the_data_dir_is_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state/data");
    let log = DecisionLog::open(&dir).unwrap();
    log.flush().unwrap();
    drop(log);
    assert_eq!(mode(&dir), 0o700, "the data dir");
    let mut files = 0;
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                assert_eq!(mode(&p), 0o700, "{}", p.display());
                stack.push(p);
            } else {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
                files += 1;
            }
        }
    }
    assert!(files >= 2, "sled wrote its files");
}
