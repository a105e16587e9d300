//! A real Prometheus for tests and benchmarks: OpenMetrics data generated in Rust,
//! backfilled with `promtool tsdb create-blocks-from openmetrics`, served by `prometheus`
//! on a free 127.0.0.1 port from its own temporary directory.
//!
//! Use from a test file with `mod support;` (then `support::prom::...`) or from a bench
//! with `#[path = "../tests/support/prom.rs"] mod prom;`.
//!
//! The server is stopped when the [`PromServer`] is dropped, and also when the test
//! process exits without dropping it (a server kept in a `static`): it runs under a small
//! `sh` watchdog that kills it, and removes its directory, when the pipe from this process
//! closes.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL_HINT: &str = "install the Debian package prometheus (apt-get install --no-install-recommends prometheus), as .ci/run does";

/// OpenMetrics text under construction: families of gauges, each with series of
/// `(Unix seconds, value)` samples.
#[derive(Clone, Debug, Default)]
pub struct OpenMetrics {
    families: Vec<Family>,
}

#[derive(Clone, Debug)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub series: Vec<SeriesData>,
}

#[derive(Clone, Debug)]
pub struct SeriesData {
    pub labels: Vec<(String, String)>,
    /// (Unix seconds, value), strictly ascending.
    pub samples: Vec<(i64, f64)>,
}

impl OpenMetrics {
    pub fn new() -> OpenMetrics {
        OpenMetrics::default()
    }

    /// Adds a series to the gauge family `name` (created on first use).
    pub fn series(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        samples: impl IntoIterator<Item = (i64, f64)>,
    ) -> &mut Self {
        let idx = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    help: format!("{name} (test data)"),
                    series: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        self.families[idx].series.push(SeriesData {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            samples: samples.into_iter().collect(),
        });
        self
    }

    pub fn families(&self) -> &[Family] {
        &self.families
    }

    pub fn sample_count(&self) -> usize {
        self.families
            .iter()
            .flat_map(|f| &f.series)
            .map(|s| s.samples.len())
            .sum()
    }

    /// The OpenMetrics text: each family contiguous with `# HELP`/`# TYPE gauge`, each
    /// series' samples in ascending time, timestamps in seconds, `# EOF` last. Panics on
    /// data promtool would silently mangle (a timestamp going backwards or repeated, a
    /// timestamp that looks like milliseconds).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            writeln!(out, "# HELP {} {}", f.name, f.help).unwrap();
            writeln!(out, "# TYPE {} gauge", f.name).unwrap();
            for s in &f.series {
                let labels = s
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect::<Vec<_>>()
                    .join(",");
                let mut prev = i64::MIN;
                for &(t, v) in &s.samples {
                    assert!(
                        t > prev,
                        "{}{{{labels}}}: timestamps must ascend ({prev} then {t})",
                        f.name
                    );
                    assert!(
                        t < 100_000_000_000,
                        "timestamp {t} looks like milliseconds; use seconds"
                    );
                    prev = t;
                    writeln!(out, "{}{{{labels}}} {} {t}", f.name, om_value(v)).unwrap();
                }
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn om_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// A running Prometheus serving backfilled data.
pub struct PromServer {
    pub url: String,
    pub port: u16,
    dir: PathBuf,
    /// The watchdog shell; closing its stdin stops Prometheus.
    child: Child,
    stdin: Option<ChildStdin>,
}

fn require(tool: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| panic!("`{tool}` is not on PATH: {INSTALL_HINT}"))
}

impl PromServer {
    /// Writes `data`, backfills it into a fresh TSDB, starts Prometheus on a free
    /// loopback port and waits until `/-/ready` (at most 60 s; fails early, with the
    /// server's log, if it exits).
    pub fn start(data: &OpenMetrics) -> PromServer {
        let prometheus = require("prometheus");
        let promtool = require("promtool");
        let dir = tempfile::Builder::new()
            .prefix("gaap-prom-")
            .tempdir()
            .expect("create a temporary directory")
            .keep();
        let om = dir.join("data.om");
        std::fs::write(&om, data.render()).expect("write the OpenMetrics file");
        let tsdb = dir.join("tsdb");
        let out = Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
            .arg(&om)
            .arg(&tsdb)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool tsdb create-blocks-from openmetrics failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            "global:\n  scrape_interval: 15s\nscrape_configs: []\n",
        )
        .expect("write prometheus.yml");
        // The port is free when probed; another process may take it before Prometheus
        // binds it, so a failed start is retried on a new port.
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            match start_on(&prometheus, &dir, &config, &tsdb, port) {
                Ok((child, stdin)) => {
                    return PromServer {
                        url: format!("http://127.0.0.1:{port}"),
                        port,
                        dir,
                        child,
                        stdin: Some(stdin),
                    };
                }
                Err(log) => last_log = log,
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("prometheus did not become ready; its log:\n{last_log}");
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Starts `prometheus` under a watchdog shell:
/// - fd 3 keeps the read end of our stdin pipe; a background job waits for EOF on it
///   (this process exited or dropped the server), then kills Prometheus and removes the
///   directory;
/// - the shell itself waits for Prometheus, so its exit shows a crashed server.
fn start_on(
    prometheus: &Path,
    dir: &Path,
    config: &Path,
    tsdb: &Path,
    port: u16,
) -> Result<(Child, ChildStdin), String> {
    const WATCHDOG: &str = r#"exec 3<&0
"$@" </dev/null >"$LOG" 2>&1 &
p=$!
( read _ <&3; kill $p 2>/dev/null; while kill -0 $p 2>/dev/null; do sleep 0.05; done; rm -rf "$DIR" ) </dev/null >/dev/null 2>&1 &
wait $p"#;
    let log = dir.join("prometheus.log");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("prometheus-watchdog")
        .arg(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg("--storage.tsdb.retention.time=100y")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .env("LOG", &log)
        .env("DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sh");
    let stdin = child.stdin.take().expect("piped stdin");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return Err(std::fs::read_to_string(&log).unwrap_or_default());
        }
        if ready(port) {
            return Ok((child, stdin));
        }
        if Instant::now() > deadline {
            drop(stdin);
            let _ = child.wait();
            return Err(format!(
                "not ready after 60 s\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET /-/ready` answered 200 (plain HTTP/1.0 over a socket: no client needed).
fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    use std::io::Write;
    if s.write_all(b"GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
}

impl Drop for PromServer {
    fn drop(&mut self) {
        // EOF on the watchdog's pipe: it kills Prometheus, waits for it, and the shell
        // exits once Prometheus has.
        drop(self.stdin.take());
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
