//! The end-to-end harness: the sandbox binary as the GAAP API, a real Prometheus, and a
//! work dir with a fleet, a policy and a config for `gaap-autoscaler run`, over loopback
//! (used by tests/daemon_e2e.rs, tests/control_e2e.rs and tests/ha.rs).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use super::prom::{OpenMetrics, PromServer};

pub const BIN: &str = env!("CARGO_BIN_EXE_gaap-autoscaler");
pub const SECRET_ID: &str = "AKIDe2eTestSecretId000000000000000";
pub const SECRET_KEY: &str = "e2eTestSecretKey0000000000000000";

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A minimal HTTP/1.0 GET on loopback: (status, body).
pub fn http_get(url: &str) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// A minimal HTTP/1.0 request on loopback with optional headers and body: (status, body).
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(s, "{head}\r\n{body}").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Sandbox {
    pub child: Child,
    pub url: String,
}

impl Sandbox {
    pub fn start(fleet: &Path, extra: &[&str]) -> Sandbox {
        let mut child = Command::new(BIN)
            .args([
                "sandbox",
                "--listen",
                "127.0.0.1:0",
                "--adjusting",
                "1s",
                "--secret-id",
                SECRET_ID,
                "--secret-key",
                SECRET_KEY,
                "--fleet",
            ])
            .arg(fleet)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("sandbox listening on ")
            .unwrap_or_else(|| panic!("unexpected sandbox banner: {line:?}"))
            .to_string();
        Sandbox { child, url }
    }

    /// ModifyProxyConfiguration calls the sandbox received, in order.
    pub fn modify_calls(&self) -> Vec<Value> {
        let (status, body) = http_get(&format!("{}/__sandbox/calls", self.url)).unwrap();
        assert_eq!(status, 200);
        let calls: Vec<Value> = serde_json::from_str(&body).unwrap();
        calls
            .into_iter()
            .filter(|c| c["action"] == "ModifyProxyConfiguration")
            .collect()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Demand history for proxies, 1-minute samples over the last 3 hours.
/// A proxy id and its bandwidth demand (Mbps) as a function of Unix time.
pub type Demand = (String, Box<dyn Fn(i64) -> f64>);

pub fn demand(proxies: &[Demand], end: i64) -> OpenMetrics {
    let mut om = OpenMetrics::new();
    let times: Vec<i64> = (0..=180).map(|i| end - 180 * 60 + i * 60).collect();
    for (id, f) in proxies {
        om.series(
            "qce_qaap_outbandwidth_max",
            &[("channel_id", id)],
            times.iter().map(|&t| (t, f(t))),
        );
    }
    for (id, _) in proxies {
        om.series(
            "qce_qaap_connum_max",
            &[("channel_id", id)],
            times.iter().map(|&t| (t, 10_000.0)),
        );
    }
    om
}

pub const POLICY: &str = r#"
name = "e2e"
select = { tags = { autoscale = "e2e" } }
interval = "1s"

[signals.bandwidth]
query = 'max by (channel_id) (qce_qaap_outbandwidth_max)'
proxy_label = "channel_id"
max_age = "5m"
[signals.connections]
query = 'max by (channel_id) (qce_qaap_connum_max)'
proxy_label = "channel_id"

[bandwidth]
signal = "bandwidth"
target_utilization = 0.7
min = 10
max = 500
[concurrent]
signal = "connections"
target_utilization = 0.7
min = 2
max = 20

[behavior.scale_up]
max_steps = 2
cooldown = "0s"
[behavior.scale_down]
stabilization = "5m"
max_steps = 1
cooldown = "0s"
"#;

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The sandbox's and Prometheus's URLs (tests/ha.rs writes one config per daemon).
    pub sandbox_url: String,
    pub prom_url: String,
}

impl Setup {
    /// A Prometheus holding `data`, the sandbox serving `proxies` (started with
    /// `sandbox_args`), and a work dir with the fleet, the e2e policy and a config pointing
    /// the daemon at both, with its HTTP endpoint on `listen`.
    pub fn start(
        proxies: &[(&str, u32, u32)],
        data: &OpenMetrics,
        listen: &str,
        sandbox_args: &[&str],
    ) -> (Setup, Sandbox, PromServer) {
        Setup::start_with(POLICY, "", proxies, data, listen, sandbox_args)
    }

    /// [`Setup::start`] with another policy text, and `engine_extra` lines added to the
    /// config's `[engine]` table.
    pub fn start_with(
        policy: &str,
        engine_extra: &str,
        proxies: &[(&str, u32, u32)],
        data: &OpenMetrics,
        listen: &str,
        sandbox_args: &[&str],
    ) -> (Setup, Sandbox, PromServer) {
        let prom = PromServer::start(data);
        let dir = tempfile::tempdir().unwrap();
        let mut fleet = String::from(
            "[[ladder]]\naccess_region = \"Guangzhou\"\ndest_region = \"Shanghai\"\nbandwidth = [10, 20, 50, 100, 200, 500, 1000]\nconcurrent = [2, 5, 10, 20, 30]\n",
        );
        for (id, bw, cc) in proxies {
            fleet.push_str(&format!(
                "\n[[proxy]]\nid = \"{id}\"\naccess_region = \"Guangzhou\"\nreal_server_region = \"Shanghai\"\nbandwidth = {bw}\nconcurrent = {cc}\ntags = {{ autoscale = \"e2e\" }}\n"
            ));
        }
        let fleet_path = dir.path().join("fleet.toml");
        std::fs::write(&fleet_path, fleet).unwrap();
        let sandbox = Sandbox::start(&fleet_path, sandbox_args);
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        std::fs::write(dir.path().join("policies/e2e.toml"), policy).unwrap();
        let config = dir.path().join("gaap-autoscaler.toml");
        std::fs::write(
            &config,
            format!(
                "[tencentcloud]\nendpoint = \"{}\"\n[prometheus]\nurl = \"{}\"\ntimeout = \"5s\"\n[engine]\npolicies = \"policies\"\ndata_dir = \"data\"\nlisten = \"{listen}\"\n{engine_extra}",
                sandbox.url, prom.url
            ),
        )
        .unwrap();
        let (sandbox_url, prom_url) = (sandbox.url.clone(), prom.url.clone());
        (
            Setup {
                dir,
                config,
                sandbox_url,
                prom_url,
            },
            sandbox,
            prom,
        )
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.dir.path())
            .env("TENCENTCLOUD_SECRET_ID", SECRET_ID)
            .env("TENCENTCLOUD_SECRET_KEY", SECRET_KEY)
            .env_remove("TENCENTCLOUD_TOKEN")
            .env("GAAP_AUTOSCALER_LOG", "info");
        c
    }

    /// `run --config <this setup's config>` followed by `extra`.
    pub fn daemon(&self, extra: &[&str]) -> Command {
        let mut args = vec!["run", "--config", self.config.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.command(&args)
    }

    pub fn run_once(&self, at: i64, extra: &[&str]) -> Output {
        let at = at.to_string();
        let mut args = vec!["--once", "--at", &at];
        args.extend_from_slice(extra);
        let out = self.daemon(&args).output().unwrap();
        assert!(
            out.status.success(),
            "run --once failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn log_json(&self) -> Vec<Value> {
        let out = self
            .command(&["log", "--data-dir", "data", "list", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn unsafe_kill(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}
