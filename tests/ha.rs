//! High availability end to end: a real 3-member etcd cluster on loopback, two
//! `gaap-autoscaler run` daemons with `[ha]`, the sandbox as the GAAP API and a real
//! Prometheus whose demand needs three changes per proxy (50 → 100 → 200 → 500 Mbps, one
//! step at a time). Whatever happens to a daemon or to etcd, the sandbox's record of
//! modify calls must show one daemon acting at a time: every change once (no ClientToken
//! applied twice, no proxy changed twice to the same values), none lost (every proxy ends
//! at 500), never more than 20 calls in a second.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::e2e::*;
use support::etcd::EtcdCluster;

const TTL: &str = "2s";
const TARGET: u64 = 500;

struct Daemon {
    name: String,
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // What the daemon said, for the failure's reader (the temp dir goes with it).
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- daemon {} (last 40 lines) ---", self.name);
            for l in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{l}");
            }
        }
    }
}

impl Daemon {
    fn start(setup: &Setup, name: &str, etcd: &[String]) -> Daemon {
        let listen = format!("127.0.0.1:{}", free_port());
        let etcd: Vec<String> = etcd.iter().map(|u| format!("\"{u}\"")).collect();
        let config = setup.dir.path().join(format!("ha-{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[tencentcloud]\nendpoint = \"{}\"\n[prometheus]\nurl = \"{}\"\ntimeout = \"5s\"\n[engine]\npolicies = \"policies\"\ndata_dir = \"data-{name}\"\nlisten = \"{listen}\"\n[ha]\netcd = [{}]\nprefix = \"/test\"\nlease_ttl = \"{TTL}\"\ninstance = \"{name}\"\n",
                setup.sandbox_url,
                setup.prom_url,
                etcd.join(", ")
            ),
        )
        .unwrap();
        let log_path = setup.dir.path().join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let child = setup
            .command(&["run", "--config", config.to_str().unwrap()])
            .stderr(log)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Daemon {
            name: name.to_string(),
            child,
            base: format!("http://{listen}"),
            log: log_path,
        }
    }

    /// The /readyz body, if it answers.
    fn role(&self) -> Option<String> {
        http_get(&format!("{}/readyz", self.base))
            .filter(|(s, _)| *s == 200)
            .map(|(_, b)| b.trim().to_string())
    }

    fn wait_role(&self, want: &str, limit: Duration) {
        wait_for(&format!("{} to say `{want}`", self.name), limit, || {
            self.role().filter(|r| r.contains(want))
        });
    }

    /// Waits (bounded) until `gaap_autoscaler_leader{instance="NAME"}` is `want`: a leader
    /// whose renewal came late reads 0 until the next one (its fence), so one scrape is
    /// not the answer.
    fn wait_gauge(&self, want: i64, limit: Duration) {
        wait_for(
            &format!("{}'s leader gauge to be {want}", self.name),
            limit,
            || (self.leader_gauge() == Some(want)).then_some(()),
        );
    }

    /// `gaap_autoscaler_leader{instance="NAME"}` on /metrics.
    fn leader_gauge(&self) -> Option<i64> {
        let (_, body) = http_get(&format!("{}/metrics", self.base))?;
        let needle = format!("gaap_autoscaler_leader{{instance=\"{}\"}} ", self.name);
        body.lines()
            .find_map(|l| l.strip_prefix(&needle))
            .and_then(|v| v.trim().parse().ok())
    }

    /// This daemon's decision log (its own sled log, read through its endpoint).
    fn records(&self) -> Vec<Value> {
        http_get(&format!("{}/log/decisions", self.base))
            .filter(|(s, _)| *s == 200)
            .and_then(|(_, b)| serde_json::from_str(&b).ok())
            .unwrap_or_default()
    }
}

fn setup(n: usize) -> (Setup, Sandbox, PromServer, Vec<String>) {
    let end = now_secs() / 60 * 60;
    let ids: Vec<String> = (0..n).map(|i| format!("link-ha{i:06}")).collect();
    let proxies: Vec<Demand> = ids
        .iter()
        .map(|id| (id.clone(), Box::new(|_| 330.0) as Box<dyn Fn(i64) -> f64>))
        .collect();
    let rows: Vec<(&str, u32, u32)> = ids.iter().map(|id| (id.as_str(), 50, 2)).collect();
    let (setup, sandbox, prom) = Setup::start(&rows, &demand(&proxies, end), "127.0.0.1:0", &[]);
    // One ladder step per change, so each proxy needs three changes over several passes.
    std::fs::write(
        setup.dir.path().join("policies/e2e.toml"),
        POLICY.replace("max_steps = 2", "max_steps = 1"),
    )
    .unwrap();
    (setup, sandbox, prom, ids)
}

fn applied(calls: &[Value]) -> Vec<&Value> {
    calls.iter().filter(|c| c["applied"] == true).collect()
}

/// Waits until every proxy's last applied change set it to [`TARGET`]; returns the calls.
fn wait_all_at_target(sandbox: &Sandbox, ids: &[String], limit: Duration) -> Vec<Value> {
    wait_for("every proxy at its target", limit, || {
        let calls = sandbox.modify_calls();
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        for c in applied(&calls) {
            last.insert(
                c["params"]["ProxyId"].as_str().unwrap().to_string(),
                c["params"]["Bandwidth"].as_u64().unwrap_or(0),
            );
        }
        ids.iter()
            .all(|id| last.get(id) == Some(&TARGET))
            .then_some(calls)
    })
}

/// One daemon acted at a time: no ClientToken applied twice, no proxy changed twice to
/// the same values (one change per need), three changes per proxy (50→100→200→500),
/// never more than 20 calls in one second at the sandbox.
fn check_calls(calls: &[Value], ids: &[String]) {
    let ok = applied(calls);
    let tokens: BTreeSet<&str> = ok
        .iter()
        .map(|c| c["params"]["ClientToken"].as_str().unwrap())
        .collect();
    assert_eq!(tokens.len(), ok.len(), "a token applied twice: {ok:#?}");
    let mut per_proxy: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for c in &ok {
        per_proxy
            .entry(c["params"]["ProxyId"].as_str().unwrap())
            .or_default()
            .push(c["params"]["Bandwidth"].as_u64().unwrap_or(0));
    }
    assert_eq!(per_proxy.len(), ids.len());
    for (proxy, steps) in &per_proxy {
        assert_eq!(
            steps,
            &vec![100, 200, 500],
            "{proxy}: one change per need, none twice, none lost"
        );
    }
    let ms: Vec<i64> = calls
        .iter()
        .map(|c| {
            (gaap_autoscaler::time::parse_time(c["time"].as_str().unwrap())
                .unwrap()
                .secs_f64()
                * 1000.0)
                .round() as i64
        })
        .collect();
    let most = gaap_autoscaler::sandbox::arrivals::most_in_one_second(&ms);
    assert!(most <= 20, "{most} modify calls in one second");
}

/// Every applied token is in `d`'s log as applied: the history reached it whoever made it.
fn check_history(d: &Daemon, calls: &[Value], limit: Duration) {
    let want: BTreeSet<String> = applied(calls)
        .iter()
        .map(|c| c["params"]["ClientToken"].as_str().unwrap().to_string())
        .collect();
    wait_for(
        &format!("{}'s log to hold every change", d.name),
        limit,
        || {
            let have: BTreeSet<String> = d
                .records()
                .iter()
                .filter(|r| r["outcome"] == "applied")
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect();
            want.is_subset(&have).then_some(())
        },
    );
}

#[test]
fn one_daemon_acts_and_the_other_takes_over_after_a_sigkill_mid_burst() {
    let cluster = EtcdCluster::start(3);
    let (setup, sandbox, _prom, ids) = setup(30);
    let a = Daemon::start(&setup, "a", &cluster.urls());
    a.wait_role("ready: leader (a)", Duration::from_secs(20));
    let b = Daemon::start(&setup, "b", &cluster.urls());
    b.wait_role("ready: follower of a", Duration::from_secs(20));
    a.wait_gauge(1, Duration::from_secs(5));
    b.wait_gauge(0, Duration::from_secs(5));

    // Mid-burst: some of the first round's 30 changes are applied, not all.
    wait_for("the first changes", Duration::from_secs(30), || {
        (applied(&sandbox.modify_calls()).len() >= 8).then_some(())
    });
    // Only the leader made decisions; the follower's log holds copies of them.
    // (It copies every 0.5 s: wait, bounded, for the first copies.)
    let copies = wait_for(
        "the follower to copy the shared log",
        Duration::from_secs(10),
        || Some(b.records()).filter(|r| !r.is_empty()),
    );
    assert!(
        copies.iter().all(|r| r["instance"] == "a"),
        "only the leader decides"
    );
    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let killed = std::time::SystemTime::now();

    b.wait_role("ready: leader (b)", Duration::from_secs(15));
    eprintln!(
        "failover: b leads {:.2} s after the kill (lease_ttl {TTL}, interval 1s)",
        killed.elapsed().unwrap().as_secs_f64()
    );
    b.wait_gauge(1, Duration::from_secs(5));
    let calls = wait_all_at_target(&sandbox, &ids, Duration::from_secs(60));
    check_calls(&calls, &ids);
    // The failover time (kill → first change sent by the new leader), for the record;
    // its bound is the wait above. README: "Failover".
    let first_by_b = calls
        .iter()
        .filter_map(|c| gaap_autoscaler::time::parse_time(c["time"].as_str()?).ok())
        .map(|t| t.secs_f64())
        .filter(|&t| {
            t > killed
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    eprintln!(
        "failover: first call by the new leader {:.2} s after the kill",
        first_by_b
            - killed
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
    );
    check_history(&b, &calls, Duration::from_secs(10));
    let records = b.records();
    assert!(records.iter().any(|r| r["instance"] == "a"));
    assert!(records.iter().any(|r| r["instance"] == "b"));
    assert!(
        records.iter().all(|r| r["outcome"] != "planned"),
        "every intent settled"
    );
    drop(a);
}

#[test]
fn losing_an_etcd_member_keeps_scaling_and_a_leader_cut_off_steps_down() {
    let mut cluster = EtcdCluster::start(3);
    let (setup, sandbox, _prom, ids) = setup(30);
    let urls = cluster.urls();
    // a talks to member 0 only, b to members 1 and 2.
    let a = Daemon::start(&setup, "a", &urls[..1]);
    a.wait_role("ready: leader (a)", Duration::from_secs(20));
    let b = Daemon::start(&setup, "b", &urls[1..]);
    b.wait_role("ready: follower of a", Duration::from_secs(20));

    wait_for("the first changes", Duration::from_secs(30), || {
        (applied(&sandbox.modify_calls()).len() >= 10).then_some(())
    });
    // One member down (b's first): the cluster keeps its quorum, a keeps leading.
    cluster.kill(1);
    let before = applied(&sandbox.modify_calls()).len();
    wait_for("scaling to go on", Duration::from_secs(30), || {
        (applied(&sandbox.modify_calls()).len() >= before + 10).then_some(())
    });
    a.wait_gauge(1, Duration::from_secs(5));
    a.wait_role("ready: leader (a)", Duration::from_secs(5));
    cluster.restart(1);
    cluster.wait_healthy(Duration::from_secs(30));

    // Cut a off: the only member it talks to stops answering. It steps down; b (whose
    // members keep the quorum) takes over once a's lease expires.
    cluster.pause(0, true);
    a.wait_role("ready: follower", Duration::from_secs(10));
    a.wait_gauge(0, Duration::from_secs(5));
    b.wait_role("ready: leader (b)", Duration::from_secs(15));
    let calls = wait_all_at_target(&sandbox, &ids, Duration::from_secs(60));
    check_calls(&calls, &ids);
    check_history(&b, &calls, Duration::from_secs(10));
    cluster.pause(0, false);
}
