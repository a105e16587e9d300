//! The shipped 20/s budget against the sandbox's own arrival check (`sandbox::arrivals`,
//! which shares no code with `ratelimit`): under delays between grant and arrival, and
//! across a restart of the process that holds the budget.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gaap_autoscaler::cloud::client::{
    ClientConfig, GaapApi, GaapClient, ModifyRequest, RetryPolicy,
};
use gaap_autoscaler::cloud::credentials::Credentials;
use gaap_autoscaler::cloud::request::Endpoint;
use gaap_autoscaler::core::{Ladder, ProxyState, ProxyStatus, fixtures};
use gaap_autoscaler::fleet::{Fleet, LadderEntry};
use gaap_autoscaler::ratelimit::{Priority, RateLimiter};
use gaap_autoscaler::sandbox::SandboxConfig;
use gaap_autoscaler::sandbox::arrivals::{Arrivals, most_in_one_second};
use gaap_autoscaler::store::{DecisionLog, DecisionRecord, Outcome, OutcomeUpdate, budget};
use gaap_autoscaler::time::{Timestamp, parse_time};

const MODIFY: &str = "ModifyProxyConfiguration";
const ID: &str = "AKIDbudget";
const KEY: &str = "budgetkey";

/// splitmix64: delays that look random and are the same every run.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 200 requests through the shipped limiter under paused time; each reaches the "server"
/// 0–600 ms after its grant (a loaded machine, a slow connection, a retry's new
/// connection) and ends 0–300 ms after that. The arrival times, checked by the sandbox's
/// own code, never hold more than 20 in one second; and the sandbox admits every one.
#[tokio::test(start_paused = true)]
async fn arrivals_late_after_their_grant_stay_within_20_per_second() {
    let limiter = Arc::new(RateLimiter::new(20).unwrap());
    let origin = tokio::time::Instant::now();
    let arrivals = Arc::new(Mutex::new(Vec::<i64>::new()));
    let tasks: Vec<_> = (0..200u64)
        .map(|i| {
            let (l, arrivals) = (limiter.clone(), arrivals.clone());
            tokio::spawn(async move {
                let sent = l.acquire(MODIFY, Priority::High).await;
                tokio::time::sleep(Duration::from_millis(mix(i) % 600)).await;
                arrivals
                    .lock()
                    .unwrap()
                    .push(origin.elapsed().as_millis() as i64);
                tokio::time::sleep(Duration::from_millis(mix(i + 1000) % 300)).await;
                drop(sent);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut times = arrivals.lock().unwrap().clone();
    assert_eq!(times.len(), 200);
    assert!(
        most_in_one_second(&times) <= 20,
        "{} arrivals in one second",
        most_in_one_second(&times)
    );
    times.sort();
    let mut server = Arrivals::new(20);
    let refused = times.iter().filter(|&&t| !server.admit(MODIFY, t)).count();
    assert_eq!(refused, 0);
}

fn fleet(n: usize) -> Fleet {
    Fleet {
        ladders: vec![LadderEntry {
            access_region: "Guangzhou".into(),
            dest_region: None,
            ladder: Ladder::new(vec![10, 20, 50, 100, 200], vec![2, 5, 10, 20]),
        }],
        proxies: (0..n)
            .map(|i| ProxyState {
                id: format!("link-b{i:07}"),
                name: None,
                access_region: "Guangzhou".into(),
                real_server_region: "Shanghai".into(),
                bandwidth: 10,
                concurrent: 2,
                status: ProxyStatus::Running,
                scalarable: 1,
                billing_type: None,
                tags: Default::default(),
            })
            .collect(),
    }
}

fn wall_now() -> Timestamp {
    Timestamp::from_datetime(&chrono::Utc::now())
}

/// One daemon process's view: its own limiter (seeded from the log the way `run` seeds
/// it) and client; sends one modify per record, logging each answer as the engine does.
async fn process_sends(endpoint: &str, log: &DecisionLog, records: &[DecisionRecord]) {
    let limiter = Arc::new(RateLimiter::new(20).unwrap());
    let retry = RetryPolicy::default();
    let ages = budget::recent_sends(log, wall_now(), limiter.window(), retry.max_attempts).unwrap();
    limiter.seed(MODIFY, &ages);
    let mut cfg = ClientConfig::new(Endpoint::parse(endpoint).unwrap());
    cfg.retry = retry;
    let client =
        Arc::new(GaapClient::new(cfg, Credentials::new(ID, KEY, None).unwrap(), limiter).unwrap());
    let tasks: Vec<_> = records
        .iter()
        .map(|r| {
            let (c, r) = (client.clone(), r.clone());
            tokio::spawn(async move {
                let out = c
                    .modify_proxy_configuration(
                        &ModifyRequest {
                            proxy_id: r.proxy_id.clone(),
                            bandwidth: Some(r.bandwidth_to),
                            concurrent: None,
                            client_token: r.id.clone(),
                            billing_type: None,
                        },
                        Priority::High,
                    )
                    .await;
                (r.id, out)
            })
        })
        .collect();
    for t in tasks {
        let (id, out) = t.await.unwrap();
        let (outcome, update) = match out {
            Ok(o) => (
                Outcome::Applied,
                OutcomeUpdate {
                    request_id: Some(o.request_id),
                    attempts: o.attempts,
                    ..OutcomeUpdate::default()
                },
            ),
            Err(e) => (
                Outcome::Failed,
                OutcomeUpdate {
                    error_code: Some(e.error.code().to_string()),
                    attempts: e.attempts,
                    ..OutcomeUpdate::default()
                },
            ),
        };
        log.record_outcome(&id, outcome, &update).unwrap();
    }
}

/// Issue 9.3: a process sends 20 modify calls, stops, and the next one starts at once
/// and sends 20 more. The budget the new process starts with is seeded from the log, so
/// the sandbox (its own check, by arrival time) sees at most 20 in any second and
/// rejects none. Before the seeding, the second process started with an empty budget and
/// the sandbox answered RequestLimitExceeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_right_after_a_burst_keeps_within_20_per_second() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let mut config = SandboxConfig::new(fleet(40), ID, KEY);
    config.adjusting = Duration::ZERO;
    let server = tokio::spawn(gaap_autoscaler::sandbox::serve(config, listener));
    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(dir.path()).unwrap();

    for part in 0..2 {
        let now = wall_now();
        let records: Vec<DecisionRecord> = (0..20)
            .map(|i| planned(&format!("link-b{:07}", part * 20 + i), now))
            .collect();
        log.append_batch(&records).unwrap();
        let stored: Vec<DecisionRecord> = log.pending().unwrap();
        assert_eq!(stored.len(), 20);
        process_sends(&endpoint, &log, &stored).await;
    }

    let calls: Vec<serde_json::Value> = reqwest::get(format!("{endpoint}/__sandbox/calls"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.abort();
    let modify: Vec<&serde_json::Value> = calls.iter().filter(|c| c["action"] == MODIFY).collect();
    let limited: Vec<&serde_json::Value> = modify
        .iter()
        .copied()
        .filter(|c| c["error_code"] == "RequestLimitExceeded")
        .collect();
    assert!(
        limited.is_empty(),
        "{} rejected: {limited:?}",
        limited.len()
    );
    assert_eq!(modify.len(), 40);
    let times: Vec<i64> = modify
        .iter()
        .map(|c| parse_time(c["time"].as_str().unwrap()).unwrap().millis())
        .collect();
    assert!(most_in_one_second(&times) <= 20);
}

/// What a restarted process counts, from each kind of record.
#[test]
fn seeds_from_answers_and_pending_table() {
    let now = Timestamp(1_795_939_200_000);
    let at = |ms_ago: i64| Timestamp(now.millis() - ms_ago);
    let answered = |ms_ago: Option<i64>, attempts: u32, outcome: Outcome| {
        let mut r = planned("link-b0000001", at(60_000));
        r.outcome = outcome;
        r.attempts = attempts;
        r.answered_at = ms_ago.map(at);
        r
    };
    let ms = Duration::from_millis;
    // (case, record, expected ages)
    let cases: Vec<(&str, DecisionRecord, Vec<Duration>)> = vec![
        (
            "answered 300 ms ago, once",
            answered(Some(300), 1, Outcome::Applied),
            vec![ms(300)],
        ),
        (
            "failed after 3 attempts",
            answered(Some(10), 3, Outcome::Failed),
            vec![ms(10); 3],
        ),
        (
            "answered 2 s ago",
            answered(Some(2_000), 1, Outcome::Applied),
            vec![],
        ),
        (
            "answered exactly a window ago",
            answered(Some(1_050), 1, Outcome::Applied),
            vec![],
        ),
        (
            "answer stamped after now",
            answered(Some(-500), 1, Outcome::Applied),
            vec![ms(0)],
        ),
        (
            "old record: decision time 60 s ago",
            answered(None, 1, Outcome::Applied),
            vec![],
        ),
        (
            "never sent (attempts 0)",
            answered(Some(10), 0, Outcome::Failed),
            vec![],
        ),
        ("dry run", answered(Some(10), 0, Outcome::DryRun), vec![]),
    ];
    for (case, r, want) in cases {
        assert_eq!(
            budget::recent_send_ages(&[r], &[], now, ms(1_050), 5),
            want,
            "{case}"
        );
    }
    let p = planned("link-b0000002", at(30_000));
    assert_eq!(
        budget::recent_send_ages(&[], std::slice::from_ref(&p), now, ms(1_050), 5),
        vec![Duration::ZERO; 5],
        "a pending decision may have been sent up to max_attempts times, just now"
    );
    // A record without answered_at counts at its decision time.
    let mut old = planned("link-b0000003", at(200));
    old.outcome = Outcome::Applied;
    old.attempts = 1;
    assert_eq!(
        budget::recent_send_ages(&[old], &[], now, ms(1_050), 5),
        vec![ms(200)]
    );
}

/// A logged scale-up of `proxy` at `now` (20 → 50 Mbps), `planned`.
fn planned(proxy: &str, now: Timestamp) -> DecisionRecord {
    support::scale_up_record(now.0, proxy, &fixtures::policy().name, Outcome::Planned)
}
