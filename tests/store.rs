//! The decision log on disk: ordering, filters, pending reconciliation, controller state,
//! retention, the JSON contract, the lock, the `log` command (direct and through the
//! daemon's endpoint) and a SIGKILL crash test.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gaap_autoscaler::core::ControllerState;
use gaap_autoscaler::store::{
    DecisionLog, DecisionRecord, LogFilter, Outcome, OutcomeUpdate, StoreError, handle_log_request,
    handle_log_request_capped,
};
use gaap_autoscaler::time::Timestamp;

mod support;
use support::scale_up_record as record;

const T0: i64 = 1_795_939_200_000;
const BIN: &str = env!("CARGO_BIN_EXE_gaap-autoscaler");

/// Reopens a log this process just dropped (sled frees the lock a moment later).
fn reopen(dir: &std::path::Path) -> DecisionLog {
    DecisionLog::open_waiting(dir, Duration::from_secs(5)).unwrap()
}

fn ids(rs: &[DecisionRecord]) -> Vec<String> {
    rs.iter().map(|r| r.id.clone()).collect()
}

/// A hold's record is stored again with its count of identical holds; it survives a
/// reopen. Only holds are rewritten; a record without repeats stores no such fields.
#[test]
fn held_records_are_rewritten_with_their_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let mut held = record(T0, "link-a", "web", Outcome::Held);
    assert!(!serde_json::to_string(&held).unwrap().contains("repeats"));
    {
        let log = DecisionLog::open(dir.path()).unwrap();
        held.id = log.append(&held).unwrap();
        held.repeats = 3;
        held.last_time = Some(Timestamp(T0 + 90_000));
        log.rewrite_held(std::slice::from_ref(&held)).unwrap();
        log.flush().unwrap();
        let mut sent = record(T0 + 1, "link-b", "web", Outcome::Planned);
        sent.id = log.append(&sent).unwrap();
        sent.outcome = Outcome::Applied;
        let err = log.rewrite_held(&[sent]).unwrap_err();
        assert!(err.to_string().contains("not a hold"), "{err}");
    }
    let log = DecisionLog::open_waiting(dir.path(), Duration::from_secs(5)).unwrap();
    let back = log.get(&held.id).unwrap().unwrap();
    assert_eq!(
        (back.repeats, back.last_time),
        (3, Some(Timestamp(T0 + 90_000)))
    );
    assert_eq!(log.len(), 2);
}

/// New logs are compressed (sled's zstd); a log created without compression (before it
/// was on) opens as it was and keeps working, across restarts.
#[test]
fn logs_are_compressed_and_an_uncompressed_log_still_opens() {
    let conf = |dir: &std::path::Path| {
        String::from_utf8_lossy(&std::fs::read(dir.join("conf")).unwrap()).into_owned()
    };
    let fresh = tempfile::tempdir().unwrap();
    DecisionLog::open(fresh.path())
        .unwrap()
        .append(&record(T0, "link-a", "web", Outcome::Held))
        .unwrap();
    assert!(
        conf(fresh.path()).contains("use_compression: true"),
        "{}",
        conf(fresh.path())
    );

    let old = tempfile::tempdir().unwrap();
    {
        let db = sled::Config::new()
            .path(old.path())
            .use_compression(false)
            .open()
            .unwrap();
        db.flush().unwrap();
    }
    for round in 0..2 {
        let log = DecisionLog::open(old.path()).unwrap();
        log.append(&record(T0 + round, "link-a", "web", Outcome::Held))
            .unwrap();
        assert_eq!(
            log.list(&LogFilter::default()).unwrap().len(),
            round as usize + 1
        );
    }
    assert!(conf(old.path()).contains("use_compression: false"));
}

#[test]
fn iteration_is_time_order_across_hundreds_of_keys_and_ms_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(dir.path()).unwrap();
    // 700 records at times crossing many 256-ms (one key byte) boundaries, appended in a
    // scrambled order; every 7th time is shared by three decisions of one proxy.
    let n = 700i64;
    let mut appended = Vec::new();
    for i in 0..n {
        let j = (i * 389) % n; // 389 is prime to 700: a permutation
        let ms = T0 + j * 97;
        let copies = if j % 7 == 0 { 3 } else { 1 };
        for _ in 0..copies {
            let id = log
                .append(&record(
                    ms,
                    &format!("link-{:04}", j % 13),
                    "web",
                    Outcome::Held,
                ))
                .unwrap();
            appended.push((ms, id));
        }
    }
    assert_eq!(log.len(), appended.len());
    let all = log.list(&LogFilter::default()).unwrap();
    assert_eq!(all.len(), appended.len());
    for w in all.windows(2) {
        assert!(w[0].time <= w[1].time, "{} after {}", w[0].id, w[1].id);
    }
    // Ids are unique, sortable, and shared milliseconds got sequences 0, 1, 2.
    let unique: BTreeSet<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(unique.len(), all.len());
    let shared: Vec<&str> = all
        .iter()
        .filter(|r| r.time.millis() == T0)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        shared,
        [
            "d-1795939200000-link-0000-0000",
            "d-1795939200000-link-0000-0001",
            "d-1795939200000-link-0000-0002"
        ]
    );
    let sorted_ids = {
        let mut v = ids(&all);
        v.sort();
        v
    };
    assert_eq!(ids(&all), sorted_ids, "id order is time order");
    // Every appended id reads back under its own id.
    for (ms, id) in &appended {
        let r = log.get(id).unwrap().expect(id);
        assert_eq!(r.time.millis(), *ms);
        assert_eq!(&r.id, id);
    }
    // Reverse iteration with a limit gives the newest, still oldest first.
    let last = log
        .list(&LogFilter {
            limit: Some(5),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ids(&last), ids(&all[all.len() - 5..]));
}

#[test]
fn filters_select_by_proxy_policy_time_and_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(dir.path()).unwrap();
    let rows = [
        (T0, "link-a", "web", Outcome::Held),
        (T0 + 1_000, "link-b", "web", Outcome::Planned),
        (T0 + 2_000, "link-a", "batch", Outcome::DryRun),
        (T0 + 3_000, "link-a", "web", Outcome::Applied),
        (T0 + 4_000, "link-b", "batch", Outcome::Held),
        (T0 + 5_000, "link-a", "web", Outcome::Failed),
    ];
    for (ms, proxy, policy, outcome) in rows {
        log.append(&record(ms, proxy, policy, outcome)).unwrap();
    }
    let times = |f: LogFilter| -> Vec<i64> {
        log.list(&f)
            .unwrap()
            .iter()
            .map(|r| (r.time.millis() - T0) / 1000)
            .collect()
    };
    let cases: Vec<(&str, LogFilter, Vec<i64>)> = vec![
        ("all", LogFilter::default(), vec![0, 1, 2, 3, 4, 5]),
        (
            "proxy",
            LogFilter {
                proxy: Some("link-a".into()),
                ..Default::default()
            },
            vec![0, 2, 3, 5],
        ),
        (
            "policy",
            LogFilter {
                policy: Some("batch".into()),
                ..Default::default()
            },
            vec![2, 4],
        ),
        (
            "since inclusive, until exclusive",
            LogFilter {
                since: Some(Timestamp(T0 + 1_000)),
                until: Some(Timestamp(T0 + 4_000)),
                ..Default::default()
            },
            vec![1, 2, 3],
        ),
        (
            "until between ms",
            LogFilter {
                until: Some(Timestamp(T0 + 2_001)),
                ..Default::default()
            },
            vec![0, 1, 2],
        ),
        (
            "outcome",
            LogFilter {
                outcome: Some(Outcome::Held),
                ..Default::default()
            },
            vec![0, 4],
        ),
        (
            "combined with limit: newest last",
            LogFilter {
                proxy: Some("link-a".into()),
                policy: Some("web".into()),
                limit: Some(2),
                ..Default::default()
            },
            vec![3, 5],
        ),
        (
            "nothing",
            LogFilter {
                proxy: Some("link-z".into()),
                ..Default::default()
            },
            vec![],
        ),
        (
            "limit 0",
            LogFilter {
                limit: Some(0),
                ..Default::default()
            },
            vec![],
        ),
    ];
    // Ids cut long proxy ids to 43 characters: the proxy filter still tells them apart.
    let long_a = format!("link-{}a", "x".repeat(45));
    let long_b = format!("link-{}b", "x".repeat(45));
    let ida = log
        .append(&record(T0 + 9_000, &long_a, "web", Outcome::Held))
        .unwrap();
    let idb = log
        .append(&record(T0 + 9_000, &long_b, "web", Outcome::Held))
        .unwrap();
    assert_ne!(ida, idb);
    assert!(ida.len() <= 64 && idb.len() <= 64);
    let only_b = LogFilter {
        proxy: Some(long_b.clone()),
        ..Default::default()
    };
    assert_eq!(ids(&log.list(&only_b).unwrap()), std::slice::from_ref(&idb));
    assert_eq!(
        log.iter(&only_b).map(|r| r.unwrap().id).collect::<Vec<_>>(),
        [idb]
    );
    let until = Some(Timestamp(T0 + 9_000));
    for (name, mut f, want) in cases {
        f.until = f.until.or(until);
        assert_eq!(times(f.clone()), want, "{name}");
        let lazy: Vec<i64> = log
            .iter(&f)
            .map(|r| (r.unwrap().time.millis() - T0) / 1000)
            .collect();
        if f.limit.is_none() {
            assert_eq!(lazy, want, "{name} (iter)");
        }
    }
}

#[test]
fn pending_outcomes_and_completion_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (planned, held, other) = {
        let log = DecisionLog::open(dir.path()).unwrap();
        let planned = log
            .append(&record(T0, "link-a", "web", Outcome::Planned))
            .unwrap();
        let held = log
            .append(&record(T0 + 1, "link-b", "web", Outcome::Held))
            .unwrap();
        let other = log
            .append(&record(T0 + 2, "link-c", "web", Outcome::Planned))
            .unwrap();
        log.append(&record(T0 + 3, "link-d", "web", Outcome::DryRun))
            .unwrap();
        assert_eq!(
            ids(&log.pending().unwrap()),
            [planned.clone(), other.clone()]
        );
        (planned, held, other)
    };
    let log = reopen(dir.path());
    assert_eq!(
        ids(&log.pending().unwrap()),
        [planned.clone(), other.clone()]
    );
    let update = OutcomeUpdate {
        request_id: Some("req-1".into()),
        attempts: 2,
        ..Default::default()
    };
    log.record_outcome(&planned, Outcome::Applied, &update)
        .unwrap();
    log.record_completion(&planned, Timestamp(T0 + 60_000))
        .unwrap();
    log.record_outcome(
        &other,
        Outcome::Failed,
        &OutcomeUpdate {
            error_code: Some("FailedOperation.NotSupportScalar".into()),
            error_message: Some("no".into()),
            attempts: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(log.pending().unwrap().is_empty());
    drop(log);
    let log = reopen(dir.path());
    assert!(log.pending().unwrap().is_empty());
    let r = log.get(&planned).unwrap().unwrap();
    assert_eq!(r.outcome, Outcome::Applied);
    assert_eq!(r.request_id.as_deref(), Some("req-1"));
    assert_eq!(r.attempts, 2);
    assert_eq!(r.completed_at, Some(Timestamp(T0 + 60_000)));
    let f = log.get(&other).unwrap().unwrap();
    assert_eq!(f.outcome, Outcome::Failed);
    assert_eq!(
        f.error_code.as_deref(),
        Some("FailedOperation.NotSupportScalar")
    );
    assert_eq!(log.get(&held).unwrap().unwrap().outcome, Outcome::Held);
    // Unknown ids are errors for updates and None for reads.
    let missing = "d-1795939200000-link-zzz-0000";
    assert!(matches!(
        log.record_outcome(missing, Outcome::Applied, &update),
        Err(StoreError::NotFound(id)) if id == missing
    ));
    assert!(matches!(
        log.record_completion("garbage", Timestamp(1)),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(log.get(missing).unwrap(), None);
    assert_eq!(log.get("garbage").unwrap(), None);
}

#[test]
fn controller_state_round_trips_per_policy_and_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = ControllerState::default();
    a.bandwidth.recommendations = vec![(Timestamp(T0), 100), (Timestamp(T0 + 30_000), 50)];
    a.bandwidth.last_up = Some(Timestamp(T0 - 5));
    a.concurrent.missing_streak = 4;
    let mut b = ControllerState::default();
    b.concurrent.last_down = Some(Timestamp(T0));
    {
        let log = DecisionLog::open(dir.path()).unwrap();
        log.save_state("web", "link-a", &a).unwrap();
        log.save_state("web", "link-b", &b).unwrap();
        log.save_state("batch", "link-a", &b).unwrap();
        log.save_state("web", "link-b", &a).unwrap(); // overwrite
        log.flush().unwrap();
    }
    let log = reopen(dir.path());
    assert_eq!(log.load_state("web", "link-a").unwrap(), Some(a.clone()));
    assert_eq!(log.load_state("web", "link-b").unwrap(), Some(a.clone()));
    assert_eq!(log.load_state("batch", "link-a").unwrap(), Some(b.clone()));
    assert_eq!(log.load_state("batch", "link-b").unwrap(), None);
    let all = log.load_all_states().unwrap();
    let want: BTreeMap<(String, String), ControllerState> = [
        (("batch".to_string(), "link-a".to_string()), b.clone()),
        (("web".to_string(), "link-a".to_string()), a.clone()),
        (("web".to_string(), "link-b".to_string()), a.clone()),
    ]
    .into_iter()
    .collect();
    assert_eq!(all, want);
    log.remove_state("web", "link-a").unwrap();
    assert_eq!(log.load_state("web", "link-a").unwrap(), None);
}

#[test]
fn prune_deletes_old_records_but_keeps_unreconciled_ones() {
    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(dir.path()).unwrap();
    let day = 86_400_000;
    let mut kept_planned = None;
    for i in 0..10 {
        let outcome = if i == 2 {
            Outcome::Planned
        } else {
            Outcome::Held
        };
        let id = log
            .append(&record(T0 + i * day, "link-a", "web", outcome))
            .unwrap();
        if i == 2 {
            kept_planned = Some(id);
        }
    }
    // Older than day 5: days 0..=4 go, except the planned one on day 2.
    assert_eq!(log.prune(Timestamp(T0 + 5 * day)).unwrap(), 4);
    let left: Vec<i64> = log
        .list(&LogFilter::default())
        .unwrap()
        .iter()
        .map(|r| (r.time.millis() - T0) / day)
        .collect();
    assert_eq!(left, [2, 5, 6, 7, 8, 9]);
    assert_eq!(
        ids(&log.pending().unwrap()),
        [kept_planned.clone().unwrap()]
    );
    assert_eq!(log.prune(Timestamp(T0 + 5 * day)).unwrap(), 0);
    // Once answered, it goes with the next prune.
    log.record_outcome(
        &kept_planned.unwrap(),
        Outcome::Applied,
        &OutcomeUpdate::default(),
    )
    .unwrap();
    assert_eq!(log.prune(Timestamp(T0 + 5 * day)).unwrap(), 1);
    assert_eq!(log.len(), 5);
}

#[test]
fn json_fields_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(dir.path()).unwrap();
    let id = log
        .append(&record(T0, "link-kicu7m5b", "web", Outcome::Planned))
        .unwrap();
    log.record_outcome(
        &id,
        Outcome::Applied,
        &OutcomeUpdate {
            request_id: Some("req-7".into()),
            attempts: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let (code, body) = handle_log_request(&log, "/log/decisions", "proxy=link-kicu7m5b");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let r = &v.as_array().unwrap()[0];
    assert_eq!(r["id"], "d-1795939200000-link-kicu7m5b-0000");
    assert_eq!(r["time"], "2026-11-29T08:00:00Z");
    assert_eq!(r["policy"], "web");
    assert_eq!(r["proxy_id"], "link-kicu7m5b");
    assert_eq!(r["mode"], "live");
    assert_eq!(r["bandwidth_from"], 20);
    assert_eq!(r["bandwidth_to"], 50);
    assert_eq!(r["concurrent_from"], 2);
    assert_eq!(r["concurrent_to"], 5);
    assert_eq!(r["outcome"], "applied");
    assert_eq!(r["request_id"], "req-7");
    assert!(r["error_code"].is_null());
    assert_eq!(r["v"], 1);
    let reasons: Vec<&str> = r["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"bandwidth:scale.up"), "{reasons:?}");
    assert_eq!(r["reason_details"][0]["reason"], reasons[0]);
    assert!(r["inputs"]["signals"]["bandwidth"]["at"].is_i64());
    assert_eq!(r["inputs"]["bandwidth"]["target"], 50);
    // One record by id, 404 for an unknown one, 400 for a bad query.
    let (code, one) = handle_log_request(&log, &format!("/log/decisions/{id}"), "");
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&one).unwrap(), *r);
    let (code, body) = handle_log_request(&log, "/log/decisions/d-1795939200000-x-0000", "");
    assert_eq!(code, 404);
    assert!(body.contains("no decision with id"), "{body}");
    let (code, body) = handle_log_request(&log, "/log/decisions", "outcome=done");
    assert_eq!(code, 400);
    assert!(body.contains("unknown outcome"), "{body}");
    assert_eq!(handle_log_request(&log, "/log/other", "").0, 404);
    // Answers are capped: more matches than the cap is refused with advice, not cut.
    log.append(&record(T0 + 1, "link-b", "web", Outcome::Held))
        .unwrap();
    log.append(&record(T0 + 2, "link-c", "web", Outcome::Held))
        .unwrap();
    let (code, body) = handle_log_request_capped(&log, "/log/decisions", "", 2);
    assert_eq!(code, 413, "{body}");
    assert!(
        body.contains("more than 2 decisions match; narrow the query"),
        "{body}"
    );
    let (code, body) =
        handle_log_request_capped(&log, "/log/decisions", "policy=web&until=1795939200.002", 2);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Vec<DecisionRecord>>(&body)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        handle_log_request_capped(&log, "/log/decisions", "limit=2", 2).0,
        200
    );
    assert_eq!(
        handle_log_request_capped(&log, "/log/decisions", "limit=3", 2).0,
        400
    );
}

#[test]
fn a_held_dir_is_locked_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let _held = DecisionLog::open(dir.path()).unwrap();
    match DecisionLog::open(dir.path()) {
        Err(e @ StoreError::Locked { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("another gaap-autoscaler"), "{msg}");
            assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("GAAP_AUTOSCALER_DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fill(log: &DecisionLog) -> Vec<String> {
    vec![
        log.append(&record(T0, "link-a", "web", Outcome::Held))
            .unwrap(),
        log.append(&record(T0 + 1_000, "link-b", "web", Outcome::Planned))
            .unwrap(),
        log.append(&record(T0 + 2_000, "link-a", "batch", Outcome::DryRun))
            .unwrap(),
    ]
}

#[test]
fn log_command_reads_the_dir_directly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let ids = {
        let log = DecisionLog::open(dir.path()).unwrap();
        fill(&log)
    };
    let (code, out, err) = cli(&[
        "log",
        "list",
        "--data-dir",
        d,
        "--json",
        "--proxy",
        "link-a",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Vec<DecisionRecord> = serde_json::from_str(&out).unwrap();
    assert_eq!(self::ids(&v), [ids[0].clone(), ids[2].clone()]);

    let (code, out, err) = cli(&["log", "list", "--data-dir", d, "--outcome", "planned"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("TIME"), "{out}");
    for want in [
        ids[1].as_str(),
        "link-b",
        "20→50",
        "2→5",
        "planned",
        "bandwidth:",
    ] {
        assert!(lines[1].contains(want), "{want} in {out}");
    }

    let (code, out, err) = cli(&["log", "show", &ids[2], "--data-dir", d]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("3. Raw need: demand 18 Mbps / target utilization 0.7"),
        "{out}"
    );
    assert!(out.contains("Outcome: dry-run"), "{out}");

    // The environment variable names the dir too.
    let out = Command::new(BIN)
        .args([
            "log",
            "export",
            "--format",
            "csv",
            "--since",
            "2026-11-29T08:00:01Z",
        ])
        .env("GAAP_AUTOSCALER_DATA_DIR", d)
        .output()
        .unwrap();
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(
        rows[0].starts_with("id,time,policy,proxy_id,mode,bandwidth_from"),
        "{csv}"
    );
    assert!(
        rows[1].starts_with(&format!(
            "{},2026-11-29T08:00:01Z,web,link-b,live,20,50,2,5,",
            ids[1]
        )),
        "{csv}"
    );

    // A config file names the dir (relative to the file, as the daemon reads it).
    let conf = dir.path().join("gaap-autoscaler.toml");
    std::fs::write(
        &conf,
        "[prometheus]\nurl = \"http://127.0.0.1:9090\"\n[engine]\ndata_dir = \".\"\n",
    )
    .unwrap();
    let (code, out, err) = cli(&[
        "log",
        "list",
        "--config",
        conf.to_str().unwrap(),
        "--json",
        "--limit",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Vec<DecisionRecord> = serde_json::from_str(&out).unwrap();
    assert_eq!(self::ids(&v), [ids[2].clone()]);
    std::fs::write(&conf, "[engine]\ndata_dir = 5\n").unwrap();
    let (code, _, err) = cli(&["log", "list", "--config", conf.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("gaap-autoscaler.toml:"), "{err}");

    let (code, out, _) = cli(&["log", "export", "--data-dir", d, "--policy", "web"]);
    assert_eq!(code, 0);
    let lines: Vec<DecisionRecord> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(self::ids(&lines), [ids[0].clone(), ids[1].clone()]);

    // User errors exit 1 with a message that says what to do.
    let (code, _, err) = cli(&["log", "show", "d-1795939200000-nope-0000", "--data-dir", d]);
    assert_eq!(code, 1);
    assert!(err.contains("no decision with id"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = cli(&["log", "list", "--data-dir", empty.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("no decision log in"), "{err}");
    assert!(
        !empty.path().join("db").exists(),
        "reading must not create a log"
    );
    let (code, _, err) = cli(&["log", "list", "--data-dir", d, "--since", "yesterday"]);
    assert_eq!(code, 1);
    assert!(err.contains("--since"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_command_reads_through_the_daemon_when_the_dir_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(DecisionLog::open(dir.path()).unwrap());
    let ids = fill(&log);
    let hits = Arc::new(AtomicUsize::new(0));
    let app = {
        let (log, hits) = (log.clone(), hits.clone());
        axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let (log, hits) = (log.clone(), hits.clone());
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                let (code, body) = handle_log_request(&log, uri.path(), uri.query().unwrap_or(""));
                (axum::http::StatusCode::from_u16(code).unwrap(), body)
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
    });

    let d = dir.path().to_str().unwrap().to_string();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&a)
        })
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    let (code, out, err) = run(s(&[
        "log",
        "list",
        "--data-dir",
        &d,
        "--daemon",
        &url,
        "--json",
        "--since",
        "2026-11-29T08:00:01Z",
    ]))
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let got: Vec<DecisionRecord> = serde_json::from_str(&out).unwrap();
    assert_eq!(self::ids(&got), [ids[1].clone(), ids[2].clone()]);
    assert_eq!(
        got[0],
        log.get(&ids[1]).unwrap().unwrap(),
        "same record through HTTP"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let (code, out, err) = run(s(&[
        "log",
        "show",
        &ids[1],
        "--data-dir",
        &d,
        "--daemon",
        &url,
        "--json",
    ]))
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let one: DecisionRecord = serde_json::from_str(&out).unwrap();
    assert_eq!(one.id, ids[1]);
    let (code, out, err) = run(s(&[
        "log",
        "show",
        &ids[0],
        "--data-dir",
        &d,
        "--daemon",
        &url,
    ]))
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Stage by stage:"), "{out}");
    let (code, _, err) = run(s(&[
        "log",
        "show",
        "d-1795939200000-nope-0000",
        "--data-dir",
        &d,
        "--daemon",
        &url,
    ]))
    .await
    .unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no decision with id"), "{err}");
    let (code, out, err) = run(s(&[
        "log",
        "export",
        "--data-dir",
        &d,
        "--daemon",
        &url,
        "--outcome",
        "held",
    ]))
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1);
    assert_eq!(hits.load(Ordering::SeqCst), 5);

    // Without --daemon, the config's `listen` names the endpoint.
    let conf = dir.path().join("gaap-autoscaler.toml");
    let listen = url.trim_start_matches("http://");
    std::fs::write(&conf, format!("[prometheus]\nurl = \"http://127.0.0.1:9090\"\n[engine]\ndata_dir = \".\"\nlisten = \"{listen}\"\n")).unwrap();
    let (code, out, err) = run(s(&[
        "log",
        "list",
        "--config",
        conf.to_str().unwrap(),
        "--json",
    ]))
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        self::ids(&serde_json::from_str::<Vec<DecisionRecord>>(&out).unwrap()),
        ids
    );
    assert_eq!(hits.load(Ordering::SeqCst), 6);

    let _ = stop_tx.send(());
    server.await.unwrap();

    // Held, and the endpoint does not answer: an environment error (exit 2) that says so.
    let (code, _, err) = run(s(&["log", "list", "--data-dir", &d, "--daemon", &url]))
        .await
        .unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("held by another gaap-autoscaler"), "{err}");
}

/// The child half of the crash test: appends planned decisions and applies every other
/// one, printing each id only after the call returned (flushed), until killed.
fn crash_child(dir: &str, round: i64) -> ! {
    // The parent has just dropped its handle: sled lets go of the lock a moment later.
    let log = reopen(std::path::Path::new(dir));
    let mut out = std::io::stdout();
    for i in 0.. {
        // Three decisions share each millisecond: the id sequence is exercised too.
        let ms = T0 + round * 10_000_000 + i / 3;
        let id = log
            .append(&record(
                ms,
                &format!("link-{}", i % 3),
                "web",
                Outcome::Planned,
            ))
            .unwrap();
        if writeln!(out, "appended {id}")
            .and_then(|_| out.flush())
            .is_err()
        {
            std::process::exit(0);
        }
        if i % 2 == 0 {
            let update = OutcomeUpdate {
                request_id: Some(format!("req-{id}")),
                attempts: 1,
                ..Default::default()
            };
            log.record_outcome(&id, Outcome::Applied, &update).unwrap();
            if writeln!(out, "applied {id}")
                .and_then(|_| out.flush())
                .is_err()
            {
                std::process::exit(0);
            }
        }
    }
    unreachable!()
}

#[test]
fn sigkill_mid_write_keeps_every_acknowledged_record() {
    const CHILD: &str = "GAAP_STORE_CRASH_CHILD_DIR";
    if let Ok(dir) = std::env::var(CHILD) {
        let round = std::env::var("GAAP_STORE_CRASH_ROUND")
            .unwrap()
            .parse()
            .unwrap();
        crash_child(&dir, round);
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut appended = BTreeSet::new();
    let mut applied = BTreeSet::new();
    for (round, kill_after) in [(0i64, 37usize), (1, 150), (2, 301)] {
        let mut child = Command::new(&exe)
            .args([
                "sigkill_mid_write_keeps_every_acknowledged_record",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, dir.path())
            .env("GAAP_STORE_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        let mut take = |line: String| {
            // The first line shares the test harness's "test NAME ... " prefix (the
            // child runs with --nocapture), so look for the marker anywhere in the line.
            if let Some((_, id)) = line.split_once("appended ") {
                appended.insert(id.to_string());
            } else if let Some((_, id)) = line.split_once("applied ") {
                applied.insert(id.to_string());
            }
        };
        for line in lines.by_ref() {
            take(line.unwrap());
            seen += 1;
            if seen == kill_after {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL, most likely inside an append or its flush
        child.wait().unwrap();
        for line in lines.map_while(Result::ok) {
            take(line);
        }

        let log = DecisionLog::open(dir.path()).expect("the log reopens cleanly after SIGKILL");
        for id in &appended {
            let r = log
                .get(id)
                .unwrap()
                .unwrap_or_else(|| panic!("acknowledged {id} lost"));
            assert_eq!(&r.id, id);
            if applied.contains(id) {
                assert_eq!(r.outcome, Outcome::Applied, "{id}");
                assert_eq!(r.request_id.as_deref(), Some(format!("req-{id}").as_str()));
            } else {
                assert!(
                    matches!(r.outcome, Outcome::Planned | Outcome::Applied),
                    "{id}"
                );
            }
        }
        // The pending index agrees with the records: exactly the planned ones.
        let all = log.list(&LogFilter::default()).unwrap();
        let planned: Vec<String> = all
            .iter()
            .filter(|r| r.outcome == Outcome::Planned)
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(ids(&log.pending().unwrap()), planned);
        // Per kill, at most the one record being written was never acknowledged, and it
        // can only be `planned` (reconciliation re-sends it with its ClientToken).
        let unacked: Vec<&DecisionRecord> =
            all.iter().filter(|r| !appended.contains(&r.id)).collect();
        assert!(
            unacked.len() <= round as usize + 1,
            "{} records, {} acknowledged",
            all.len(),
            appended.len()
        );
        assert!(unacked.iter().all(|r| r.outcome == Outcome::Planned));
    }
    assert!(appended.len() >= 300, "{}", appended.len());
}
