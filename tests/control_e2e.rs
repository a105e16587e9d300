//! Operators in control (issue 12), end to end: the `gaap-autoscaler run` daemon with the
//! sandbox as the GAAP API and a real Prometheus; pause / resume / status through the
//! CLI and the control endpoint over HTTP; manual changes made by a second client (the
//! `api` command) through the sandbox's API.

mod support;

use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::e2e::*;

const PROXY: &str = "link-e2e00001";

/// The e2e policy with `extra` top-level keys.
fn policy_with(extra: &str) -> String {
    POLICY.replace(
        "interval = \"1s\"\n",
        &format!("interval = \"1s\"\n{extra}\n"),
    )
}

/// Demand of 130 Mbps: 50 → 200 (two ladder steps).
fn busy() -> OpenMetrics {
    demand(&[(PROXY.into(), Box::new(|_| 130.0))], now_secs() / 60 * 60)
}

/// A daemon killed when dropped (a failing test leaves none behind).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_daemon(setup: &Setup, base: &str) -> Daemon {
    let d = Daemon(
        setup
            .daemon(&[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("readiness", Duration::from_secs(60), || {
        http_get(&format!("{base}/readyz")).filter(|(s, _)| *s == 200)
    });
    d
}

fn stop(mut daemon: Daemon) {
    unsafe_kill(daemon.0.id(), "TERM");
    let status = wait_for("exit after SIGTERM", Duration::from_secs(30), || {
        daemon.0.try_wait().unwrap()
    });
    assert!(status.success(), "{status}");
}

/// The daemon's decisions, through its endpoint.
fn decisions(base: &str) -> Vec<Value> {
    let (s, body) = http_get(&format!("{base}/log/decisions")).unwrap();
    assert_eq!(s, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn has_reason(r: &Value, code: &str) -> bool {
    r["reasons"].as_array().is_some_and(|a| {
        a.iter()
            .any(|x| x.as_str().is_some_and(|s| s.ends_with(code)))
    })
}

/// The applied modify calls made by the daemon (their ClientToken is a decision id).
fn daemon_changes(sandbox: &Sandbox, base: &str) -> Vec<Value> {
    let ids: Vec<String> = decisions(base)
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    sandbox
        .modify_calls()
        .into_iter()
        .filter(|c| c["applied"] == true)
        .filter(|c| {
            c["params"]["ClientToken"]
                .as_str()
                .is_some_and(|t| ids.iter().any(|i| i == t))
        })
        .collect()
}

/// A second client changes the proxy through the sandbox's API, as an operator would.
fn manual_change(setup: &Setup, sandbox: &Sandbox, bandwidth: u32, concurrent: u64) {
    let params =
        format!(r#"{{"ProxyId":"{PROXY}","Bandwidth":{bandwidth},"Concurrent":{concurrent}}}"#);
    let out = setup
        .command(&[
            "api",
            "ModifyProxyConfiguration",
            "--endpoint",
            &sandbox.url,
            "--params",
            &params,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn settled_at_200(base: &str) {
    wait_for("a hold at 200", Duration::from_secs(60), || {
        decisions(base).into_iter().find(|r| {
            r["bandwidth_from"] == 200
                && r["outcome"] == "held"
                && !has_reason(r, "guard.adjusting")
        })
    });
}

fn cli(setup: &Setup, args: &[&str]) -> (bool, String, String) {
    let mut all = args.to_vec();
    let config = setup.config.to_str().unwrap().to_string();
    all.extend_from_slice(&["--config", &config]);
    let out = setup.command(&all).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn metrics(base: &str) -> String {
    http_get(&format!("{base}/metrics")).unwrap().1
}

#[test]
fn pause_holds_with_guard_paused_a_restart_keeps_it_and_resume_acts_at_the_next_pass() {
    let listen = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{listen}");
    // manual_hold = "0": the operator's change below is logged but holds nothing, so the
    // pause alone keeps the proxy where it is.
    let (setup, sandbox, _prom) = Setup::start_with(
        &policy_with("manual_hold = \"0\""),
        "",
        &[(PROXY, 50, 2)],
        &busy(),
        &listen,
        &[],
    );
    let daemon = start_daemon(&setup, &base);
    let first = wait_for("the first change", Duration::from_secs(60), || {
        Some(daemon_changes(&sandbox, &base)).filter(|c| !c.is_empty())
    });
    assert_eq!(first[0]["params"]["Bandwidth"], 200);
    let concurrent = first[0]["params"]["Concurrent"].as_u64().unwrap();
    // The change is complete (a pass sees the proxy RUNNING at 200): an operator may act.
    settled_at_200(&base);

    let (ok, out, err) = cli(
        &setup,
        &[
            "pause",
            "--policy",
            "e2e",
            "--direction",
            "up",
            "--for",
            "2h",
            "--reason",
            "load test",
            "--by",
            "tester",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("scale_up paused for policy e2e by tester"),
        "{out}"
    );
    // Someone takes the proxy back to 50: a scale-up is needed, and paused.
    manual_change(&setup, &sandbox, 50, concurrent);
    let held = wait_for("a guard.paused hold", Duration::from_secs(60), || {
        decisions(&base)
            .into_iter()
            .find(|r| has_reason(r, "guard.paused") && r["bandwidth_from"] == 50)
    });
    assert_eq!(held["outcome"], "held", "{held:#?}");
    assert_eq!(held["bandwidth_to"], 50);
    let m = metrics(&base);
    assert!(
        m.contains("gaap_autoscaler_paused{direction=\"scale_up\",policy=\"e2e\",proxy=\"\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("gaap_autoscaler_manual_changes_total{policy=\"e2e\"} 1"),
        "{m}"
    );
    // `log show` says who paused, why and until when.
    let (ok, shown, err) = cli(&setup, &["log", "show", held["id"].as_str().unwrap()]);
    assert!(ok, "{err}");
    for needle in ["guard.paused", "by tester", "load test", "until"] {
        assert!(shown.contains(needle), "{needle}: {shown}");
    }
    assert_eq!(
        daemon_changes(&sandbox, &base).len(),
        1,
        "no call while paused"
    );

    // A restart keeps the pause: status lists it, and the new process holds too.
    stop(daemon);
    let daemon = start_daemon(&setup, &base);
    let (ok, status, err) = cli(&setup, &["status"]);
    assert!(ok, "{err}");
    assert!(
        status.contains("scale_up paused for policy e2e by tester") && status.contains("load test"),
        "{status}"
    );
    wait_for("a hold after the restart", Duration::from_secs(60), || {
        Some(metrics(&base)).filter(|m| {
            m.contains("gaap_autoscaler_decisions_total{outcome=\"held\",policy=\"e2e\",reason=\"guard.paused\"}")
        })
    });
    assert_eq!(
        daemon_changes(&sandbox, &base).len(),
        1,
        "no call while paused"
    );

    // Resume: the next pass scales up.
    let (ok, out, err) = cli(&setup, &["resume", "--policy", "e2e"]);
    assert!(ok, "{err}");
    assert!(out.contains("resumed: 1"), "{out}");
    let changes = wait_for("the change after resume", Duration::from_secs(60), || {
        Some(daemon_changes(&sandbox, &base)).filter(|c| c.len() >= 2)
    });
    assert_eq!(changes[1]["params"]["Bandwidth"], 200);
    let (ok, status, _) = cli(&setup, &["status"]);
    assert!(ok && status.contains("nothing paused or held"), "{status}");
    assert!(!metrics(&base).contains("gaap_autoscaler_paused{"));
    stop(daemon);
}

#[test]
fn a_manual_change_is_held_for_manual_hold_then_scaling_resumes() {
    let listen = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{listen}");
    let (setup, sandbox, _prom) = Setup::start_with(
        &policy_with("manual_hold = \"5s\""),
        "",
        &[(PROXY, 50, 2)],
        &busy(),
        &listen,
        &[],
    );
    let daemon = start_daemon(&setup, &base);
    let first = wait_for("the first change", Duration::from_secs(60), || {
        Some(daemon_changes(&sandbox, &base)).filter(|c| !c.is_empty())
    });
    let concurrent = first[0]["params"]["Concurrent"].as_u64().unwrap();
    // The change is complete (a pass sees the proxy RUNNING at 200): an operator may act.
    settled_at_200(&base);
    manual_change(&setup, &sandbox, 100, concurrent);
    let restored = wait_for("the change after the hold", Duration::from_secs(60), || {
        Some(daemon_changes(&sandbox, &base)).filter(|c| c.len() >= 2)
    });
    // Scaling resumed: up from 100 (how far depends on the saturation stage).
    assert!(
        restored[1]["params"]["Bandwidth"].as_u64().unwrap() >= 200,
        "{restored:#?}"
    );

    let log = decisions(&base);
    let seen = log
        .iter()
        .find(|r| {
            r["reason_details"].as_array().is_some_and(|a| {
                a.iter().any(|d| {
                    d["code"] == "observed.manual_change"
                        && d["detail"]
                            .as_str()
                            .is_some_and(|t| t.contains("200 Mbps") && t.contains("→ 100 Mbps"))
                })
            })
        })
        .unwrap_or_else(|| panic!("no observed.manual_change from 200 to 100: {log:#?}"));
    let t = |r: &Value| gaap_autoscaler::time::parse_time(r["time"].as_str().unwrap()).unwrap();
    let detected = t(seen);
    // Held for manual_hold: every decision from 100 in the 5 s after the detection held it
    // (observed.manual_change); the change back to 200 came after the hold.
    for r in log.iter().filter(|r| r["bandwidth_from"] == 100) {
        let at = t(r);
        if at >= detected && at < detected + Duration::from_secs(5) {
            assert_eq!(r["outcome"], "held", "{r:#?}");
            assert!(has_reason(r, "observed.manual_change"), "{r:#?}");
        }
    }
    let back = log
        .iter()
        .find(|r| r["id"] == restored[1]["params"]["ClientToken"])
        .unwrap();
    assert!(
        t(back) >= detected + Duration::from_secs(5),
        "changed back during the hold: {back:#?}"
    );
    assert!(
        metrics(&base).contains("gaap_autoscaler_manual_changes_total{policy=\"e2e\"} 1"),
        "{}",
        metrics(&base)
    );
    stop(daemon);
}

#[test]
fn the_control_endpoint_requires_the_token_off_loopback_and_never_logs_it() {
    const TOKEN: &str = "e2e-control-token-0123456789abcdef";
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let base = format!("http://127.0.0.1:{port}");
    let (setup, _sandbox, _prom) = Setup::start_with(
        &policy_with(""),
        &format!("control_token = \"{TOKEN}\"\n"),
        &[(PROXY, 50, 2)],
        &busy(),
        &listen,
        &[],
    );
    let log_path = setup.dir.path().join("daemon.log");
    let mut daemon = Daemon(
        setup
            .daemon(&[])
            .env("GAAP_AUTOSCALER_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for("readiness", Duration::from_secs(60), || {
        http_get(&format!("{base}/readyz")).filter(|(s, _)| *s == 200)
    });
    let body = r#"{"policy":"e2e","direction":"down","reason":"r","by":"t"}"#;
    let pause = |headers: &[(&str, &str)]| {
        http_request("POST", &format!("{base}/control/pause"), headers, body)
            .unwrap()
            .0
    };
    assert_eq!(pause(&[]), 401);
    assert_eq!(
        pause(&[("Authorization", "Bearer wrong-token-0123456789abcdef")]),
        401
    );
    assert_eq!(
        pause(&[("Authorization", TOKEN)]),
        401,
        "not a bearer header"
    );
    assert_eq!(pause(&[("Authorization", &format!("Bearer {TOKEN}"))]), 200);
    // Reads stay open.
    let (s, status) = http_get(&format!("{base}/control/status")).unwrap();
    assert_eq!(s, 200);
    assert!(status.contains(r#""direction":"down""#), "{status}");
    // The CLI: refused with a wrong token (the environment's wins over the config's),
    // accepted with the config's.
    let resume = || {
        let mut c = setup.command(&[
            "resume",
            "--policy",
            "e2e",
            "--config",
            setup.config.to_str().unwrap(),
        ]);
        c.env_remove("GAAP_AUTOSCALER_CONTROL_TOKEN");
        c
    };
    let out = resume()
        .env(
            "GAAP_AUTOSCALER_CONTROL_TOKEN",
            "wrong-token-0123456789abcdef",
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("401"), "{err}");
    let out = resume().output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("resumed: 1"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    unsafe_kill(daemon.0.id(), "TERM");
    wait_for("exit", Duration::from_secs(30), || {
        daemon.0.try_wait().unwrap()
    });
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("control request refused"),
        "the refusals are logged"
    );
    assert!(!log.contains(TOKEN), "the token is in the log");
    assert!(
        !log.contains("0123456789abcdef"),
        "a part of the token is in the log"
    );
}
