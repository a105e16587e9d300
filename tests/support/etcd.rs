//! A real etcd cluster for tests: `n` members of Debian's `etcd-server` on free loopback
//! ports, each in its own directory under one temporary dir. Members can be killed,
//! paused (SIGSTOP), resumed and restarted; every member is killed when the
//! [`EtcdCluster`] is dropped (and, like the Prometheus helper, by a watchdog `sh` when the
//! test process dies without dropping it).
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL_HINT: &str = "install the Debian package etcd-server (apt-get install --no-install-recommends etcd-server), as .ci/run does";

pub struct Member {
    pub name: String,
    pub client_url: String,
    peer_url: String,
    dir: PathBuf,
    child: Option<Child>,
    /// The watchdog's stdin: closing it (drop, or this process dying) kills the member.
    _watchdog: Option<ChildStdin>,
    /// The watchdog shell, waited for once its stdin is closed.
    watchdog: Option<Child>,
}

pub struct EtcdCluster {
    pub members: Vec<Member>,
    initial_cluster: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl EtcdCluster {
    /// Starts `n` members and waits (bounded) until the cluster answers.
    pub fn start(n: usize) -> EtcdCluster {
        assert!(
            Command::new("etcd")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
            "etcd not found: {INSTALL_HINT}"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut members: Vec<Member> = (0..n)
            .map(|i| {
                let name = format!("m{i}");
                Member {
                    client_url: format!("http://127.0.0.1:{}", free_port()),
                    peer_url: format!("http://127.0.0.1:{}", free_port()),
                    dir: dir.path().join(&name),
                    name,
                    child: None,
                    _watchdog: None,
                    watchdog: None,
                }
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members: Vec::new(),
            initial_cluster,
            _dir: dir,
        };
        for m in &mut members {
            cluster.spawn(m);
        }
        cluster.members = members;
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    fn spawn(&self, m: &mut Member) {
        let log = std::fs::File::create(format!("{}.log", m.dir.display())).unwrap();
        let mut child = Command::new("etcd")
            .args([
                "--name",
                &m.name,
                "--data-dir",
                m.dir.to_str().unwrap(),
                "--listen-client-urls",
                &m.client_url,
                "--advertise-client-urls",
                &m.client_url,
                "--listen-peer-urls",
                &m.peer_url,
                "--initial-advertise-peer-urls",
                &m.peer_url,
                "--initial-cluster",
                &self.initial_cluster,
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "gaap-test",
                // Fast elections between members on loopback.
                "--heartbeat-interval",
                "50",
                "--election-timeout",
                "500",
            ])
            .env_remove("ETCDCTL_API")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start etcd: {e}; {INSTALL_HINT}"));
        let pid = child.id();
        let mut watchdog = Command::new("sh")
            .args([
                "-c",
                &format!("cat >/dev/null; kill -CONT {pid}; kill -9 {pid}"),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        m._watchdog = watchdog.stdin.take();
        m.watchdog = Some(watchdog);
        if let Ok(Some(s)) = child.try_wait() {
            panic!("etcd {} exited at once: {s}", m.name);
        }
        m.child = Some(child);
    }

    /// Every member's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Waits until every running member answers `/health` with a leader.
    pub fn wait_healthy(&self, limit: Duration) {
        let start = Instant::now();
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            loop {
                if health(&m.client_url) {
                    break;
                }
                assert!(
                    start.elapsed() < limit,
                    "etcd member {} not healthy after {limit:?}",
                    m.name
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// SIGKILL one member.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.members[i]._watchdog = None;
        if let Some(mut w) = self.members[i].watchdog.take() {
            let _ = w.wait();
        }
    }

    /// Starts a killed member again on its data dir (it rejoins the cluster).
    pub fn restart(&mut self, i: usize) {
        assert!(self.members[i].child.is_none(), "member {i} is running");
        let mut m = std::mem::replace(
            &mut self.members[i],
            Member {
                name: String::new(),
                client_url: String::new(),
                peer_url: String::new(),
                dir: PathBuf::new(),
                child: None,
                _watchdog: None,
                watchdog: None,
            },
        );
        self.spawn(&mut m);
        self.members[i] = m;
    }

    /// SIGSTOP / SIGCONT one member: it stops answering without closing its sockets.
    pub fn pause(&self, i: usize, paused: bool) {
        let pid = self.members[i].child.as_ref().expect("running").id();
        let sig = if paused { "-STOP" } else { "-CONT" };
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

/// `GET /health` says `"health":"true"`.
fn health(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some(host) = url.strip_prefix("http://") else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect(host) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET /health HTTP/1.0\r\nHost: {host}\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.contains("\"health\":\"true\"")
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            if let Some(c) = &self.members[i].child {
                // A paused member must run again to die at once.
                let _ = Command::new("kill")
                    .args(["-CONT", &c.id().to_string()])
                    .status();
            }
            self.kill(i);
        }
    }
}
