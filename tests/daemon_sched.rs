//! The daemon's scheduling and acting logic under paused tokio time, with in-memory
//! stand-ins for the cloud, the metrics and the journal (the end-to-end tests with a real
//! Prometheus, the sandbox and sled are in tests/daemon_e2e.rs).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gaap_autoscaler::core::{Ladder, Observation, ProxyState, ProxyStatus, fixtures};
use gaap_autoscaler::daemon::engine::{Engine, EngineOptions};
use gaap_autoscaler::daemon::ports::*;
use gaap_autoscaler::daemon::schedule::Clock;
use gaap_autoscaler::daemon::stats::Stats;
use gaap_autoscaler::daemon::supervisor::{Control, run_once, supervise};
use gaap_autoscaler::policy::{Mode, Policy};
use gaap_autoscaler::store::{DecisionLog, DecisionRecord, LogFilter, Outcome};
use gaap_autoscaler::time::Timestamp;

const START: Timestamp = Timestamp::from_secs(1_795_939_200);

type ListChange = Box<dyn FnOnce(&mut Vec<ProxyState>) + Send>;

#[derive(Default)]
struct FakeCloud {
    proxies: Mutex<Vec<ProxyState>>,
    calls: Mutex<Vec<(ModifyCall, Timestamp)>>,
    /// Answer every modify with this (None = apply it).
    reject_with: Mutex<Option<String>>,
    delay: Duration,
    /// How many times the proxy list was read.
    lists: Mutex<usize>,
    journal: Mutex<Option<Arc<DecisionLog>>>,
    clock: Mutex<Option<Clock>>,
    /// The next this many reads of the proxy list fail.
    fail_lists: Mutex<usize>,
    /// A read of the list answers with the proxies as they were when it began, after this.
    list_delay: Mutex<Duration>,
    /// Applied to the proxies once, while the next list read is delayed (someone else
    /// changes a proxy meanwhile).
    during_list: Mutex<Option<ListChange>>,
}

impl Cloud for FakeCloud {
    async fn list_proxies(&self) -> Result<Vec<ProxyState>, PortError> {
        *self.lists.lock().unwrap() += 1;
        {
            let mut fail = self.fail_lists.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err(PortError {
                    context: "DescribeProxies".into(),
                    code: Some("InternalError".into()),
                    message: "the listing failed".into(),
                });
            }
        }
        let snapshot = self.proxies.lock().unwrap().clone();
        let delay = *self.list_delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        if let Some(change) = self.during_list.lock().unwrap().take() {
            change(&mut self.proxies.lock().unwrap());
        }
        Ok(snapshot)
    }
    async fn ladder(&self, _a: &str, _d: &str) -> Result<Ladder, PortError> {
        Ok(fixtures::ladder())
    }
    async fn statuses(&self, ids: &[String]) -> Result<HashMap<String, ProxyStatus>, PortError> {
        let ps = self.proxies.lock().unwrap();
        Ok(ps
            .iter()
            .filter(|p| ids.contains(&p.id))
            .map(|p| (p.id.clone(), p.status.clone()))
            .collect())
    }
    async fn modify(&self, call: ModifyCall) -> ModifyResult {
        // The decision must be in the journal, as planned, before any call.
        if let Some(j) = self.journal.lock().unwrap().as_ref() {
            let rec = j
                .get(&call.client_token)
                .unwrap()
                .expect("logged before the call");
            assert_eq!(rec.outcome, Outcome::Planned);
        }
        let now = self.clock.lock().unwrap().as_ref().unwrap().now();
        self.calls.lock().unwrap().push((call.clone(), now));
        tokio::time::sleep(self.delay).await;
        if let Some(code) = self.reject_with.lock().unwrap().clone() {
            if code == "unknown" {
                return ModifyResult::Failed {
                    code: Some(gaap_autoscaler::cloud::error::OUTCOME_UNKNOWN.into()),
                    message: "the answer could not be read".into(),
                    attempts: 3,
                };
            }
            return ModifyResult::Rejected {
                code,
                message: "no".into(),
                request_id: Some("req-x".into()),
                attempts: 1,
            };
        }
        let mut ps = self.proxies.lock().unwrap();
        let p = ps.iter_mut().find(|p| p.id == call.proxy_id).unwrap();
        p.bandwidth = call.bandwidth.unwrap();
        p.concurrent = call.concurrent.unwrap();
        ModifyResult::Applied {
            request_id: format!("req-{}", call.client_token),
            attempts: 1,
            confirmed_duplicate: false,
        }
    }
}

/// Demand per proxy, fixed until changed.
#[derive(Default)]
struct FakeMetrics {
    demand: Mutex<HashMap<String, (f64, f64)>>,
    queries: Mutex<Vec<Timestamp>>,
    /// The answer to a warm-up's history query (None: no history).
    history: Mutex<Option<Result<History, String>>>,
    /// The proxies each history query asked for.
    history_asks: Mutex<Vec<Vec<String>>>,
}

impl Metrics for FakeMetrics {
    async fn observe(
        &self,
        _policy: &Policy,
        proxies: &[String],
        now: Timestamp,
    ) -> PolicyReadings {
        self.queries.lock().unwrap().push(now);
        let d = self.demand.lock().unwrap();
        let mut r = PolicyReadings::default();
        for id in proxies {
            if let Some(&(bw, conns)) = d.get(id) {
                r.per_proxy
                    .insert(id.clone(), fixtures::observe(bw, conns, now));
            }
        }
        r
    }

    async fn hourly_highs(
        &self,
        _policy: &Policy,
        proxies: &[String],
        _now: Timestamp,
    ) -> Result<History, String> {
        self.history_asks.lock().unwrap().push(proxies.to_vec());
        self.history
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Ok(History::new()))
    }
}

struct World {
    cloud: Arc<FakeCloud>,
    metrics: Arc<FakeMetrics>,
    journal: Arc<DecisionLog>,
    engine: Arc<Engine<FakeCloud, FakeMetrics>>,
    _dir: tempfile::TempDir,
}

impl World {
    /// Every record, oldest first.
    fn records(&self) -> Vec<DecisionRecord> {
        self.journal.list(&LogFilter::default()).unwrap()
    }
}

fn world(n: usize, delay: Duration, options: EngineOptions) -> World {
    let dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(DecisionLog::open(dir.path()).unwrap());
    world_with(n, delay, options, journal, dir)
}

fn world_with(
    n: usize,
    delay: Duration,
    options: EngineOptions,
    journal: Arc<DecisionLog>,
    dir: tempfile::TempDir,
) -> World {
    let proxies: Vec<ProxyState> = (0..n)
        .map(|i| {
            let mut p = fixtures::proxy(20, 2);
            p.id = format!("link-{i:08}");
            p
        })
        .collect();
    let clock = Clock::starting_at(START);
    let cloud = Arc::new(FakeCloud {
        delay,
        ..FakeCloud::default()
    });
    *cloud.proxies.lock().unwrap() = proxies;
    *cloud.journal.lock().unwrap() = Some(journal.clone());
    *cloud.clock.lock().unwrap() = Some(clock.clone());
    let metrics = Arc::new(FakeMetrics::default());
    let engine = Engine::new(
        cloud.clone(),
        metrics.clone(),
        journal.clone(),
        Arc::new(Stats::new()),
        options,
        clock,
    )
    .unwrap();
    World {
        cloud,
        metrics,
        journal,
        engine,
        _dir: dir,
    }
}

fn policy_for(n: usize) -> Arc<Policy> {
    let mut p = fixtures::policy();
    p.selector.proxies = (0..n).map(|i| format!("link-{i:08}")).collect();
    Arc::new(p)
}

fn quiet_options() -> EngineOptions {
    EngineOptions {
        watch_completion: false,
        ..EngineOptions::default()
    }
}

#[tokio::test(start_paused = true)]
async fn passes_follow_the_interval_grid() {
    let w = world(2, Duration::ZERO, quiet_options());
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(supervise(
        w.engine.clone(),
        vec![policy_for(2)],
        rx,
        Duration::from_secs(5),
    ));
    tokio::time::sleep(Duration::from_secs(5 * 60 + 1)).await;
    tx.send(Control::Shutdown).await.unwrap();
    task.await.unwrap();
    let q = w.metrics.queries.lock().unwrap().clone();
    // START is on the 30 s grid: passes at +30 s … +300 s.
    let want: Vec<Timestamp> = (1..=10)
        .map(|i| START + Duration::from_secs(30 * i))
        .collect();
    assert_eq!(q, want);
    // Two proxies, every pass decided each of them (held: no demand → no data). The nine
    // identical holds after the first are counted on the first record of each proxy.
    let records = w.records();
    assert_eq!(records.len(), 2, "{records:#?}");
    for r in &records {
        assert_eq!(r.time, START + Duration::from_secs(30));
        assert_eq!(r.repeats, 9);
        assert_eq!(r.last_time, Some(START + Duration::from_secs(300)));
    }
}

/// A hold counts on the proxy's previous record only while nothing differs and for at
/// most an hour; a different hold, or a change, starts a new record.
#[tokio::test(start_paused = true)]
async fn identical_holds_are_counted_on_one_record_per_hour() {
    let w = world(1, Duration::ZERO, quiet_options());
    let p = policy_for(1);
    let pass = |i: u64| {
        let (w, p) = (&w, &p);
        async move {
            w.engine
                .run_pass(p, START + Duration::from_secs(30 * i), &mut Vec::new())
                .await
        }
    };
    // 0..130: no data, held (a run of 120 fits in the hour; the 121st starts a new record).
    for i in 0..130 {
        pass(i).await;
    }
    let r = w.records();
    assert_eq!(r.len(), 2, "{r:#?}");
    assert_eq!((r[0].repeats, r[1].repeats), (119, 9));
    assert_eq!(r[1].time, START + Duration::from_secs(30 * 120));
    // Demand arrives: the decision differs (a change, then other holds): new records.
    w.metrics
        .demand
        .lock()
        .unwrap()
        .insert("link-00000000".into(), (12.0, 14_000.0));
    pass(130).await;
    pass(131).await;
    let r = w.records();
    assert!(r.len() >= 3, "{r:#?}");
    assert_eq!(r[2].time, START + Duration::from_secs(30 * 130));
    assert_ne!(r[2].reasons, r[1].reasons);
    // Every decision is counted exactly once.
    let counted: u32 = r.iter().map(|x| 1 + x.repeats).sum();
    assert_eq!(counted, 132);
}

/// Two policies due at the same time read the proxy list once; the next time reads it again.
#[tokio::test(start_paused = true)]
async fn policies_due_together_share_one_read_of_the_proxy_list() {
    let w = world(4, Duration::ZERO, quiet_options());
    let mut a = fixtures::policy();
    a.name = "a".into();
    a.selector.proxies = vec!["link-00000000".into(), "link-00000001".into()];
    let mut b = fixtures::policy();
    b.name = "b".into();
    b.selector.proxies = vec!["link-00000002".into(), "link-00000003".into()];
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (mut calls_a, mut calls_b) = (Vec::new(), Vec::new());
    for (i, t) in [START, START + Duration::from_secs(30)]
        .into_iter()
        .enumerate()
    {
        let (ra, rb) = tokio::join!(
            w.engine.run_pass(&a, t, &mut calls_a),
            w.engine.run_pass(&b, t, &mut calls_b)
        );
        assert_eq!((ra.evaluated, rb.evaluated), (2, 2), "{ra:?} {rb:?}");
        assert_eq!(
            *w.cloud.lists.lock().unwrap(),
            i + 1,
            "reads after pass {i}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_change_is_logged_then_sent_with_its_id_as_client_token() {
    let w = world(1, Duration::ZERO, quiet_options());
    w.metrics
        .demand
        .lock()
        .unwrap()
        .insert("link-00000000".into(), (100.0, 14_000.0));
    let reports = run_once(&w.engine, &[policy_for(1)], START).await;
    assert_eq!(reports[0].changes, 1);
    let calls = w.cloud.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    let entries = w.records();
    assert_eq!(calls[0].0.client_token, entries[0].id);
    // need 100/0.7 = 143 → ladder 200, but at most two steps up from 20: 50, 100.
    assert_eq!(calls[0].0.bandwidth, Some(100));
    assert_eq!(entries[0].outcome, Outcome::Applied);
    assert_eq!(
        entries[0].request_id.as_deref(),
        Some(&*format!("req-{}", entries[0].id))
    );
}

#[tokio::test(start_paused = true)]
async fn dry_run_sends_nothing() {
    let w = world(
        3,
        Duration::ZERO,
        EngineOptions {
            dry_run: true,
            ..quiet_options()
        },
    );
    for i in 0..3 {
        w.metrics
            .demand
            .lock()
            .unwrap()
            .insert(format!("link-{i:08}"), (300.0, 100_000.0));
    }
    run_once(&w.engine, &[policy_for(3)], START).await;
    assert!(w.cloud.calls.lock().unwrap().is_empty());
    let e = w.records();
    assert_eq!(e.len(), 3);
    assert!(
        e.iter()
            .all(|r| r.outcome == Outcome::DryRun && r.mode == "dry-run")
    );
    // A dry-run policy (not the flag) behaves the same.
    let w = world(1, Duration::ZERO, quiet_options());
    w.metrics
        .demand
        .lock()
        .unwrap()
        .insert("link-00000000".into(), (300.0, 100_000.0));
    let mut p = (*policy_for(1)).clone();
    p.mode = Mode::DryRun;
    run_once(&w.engine, &[Arc::new(p)], START).await;
    assert!(w.cloud.calls.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_in_flight_calls_finish() {
    let w = world(1, Duration::from_secs(20), quiet_options());
    w.metrics
        .demand
        .lock()
        .unwrap()
        .insert("link-00000000".into(), (100.0, 14_000.0));
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(supervise(
        w.engine.clone(),
        vec![policy_for(1)],
        rx,
        Duration::from_secs(60),
    ));
    // First pass at +30 s sends a call that takes 20 s; stop at +35 s.
    tokio::time::sleep(Duration::from_secs(35)).await;
    tx.send(Control::Shutdown).await.unwrap();
    task.await.unwrap();
    let e = w.records();
    assert_eq!(
        e[0].outcome,
        Outcome::Applied,
        "the in-flight call finished and its outcome was logged"
    );
    assert_eq!(w.cloud.calls.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_proxy_is_skipped_until_it_changes() {
    let w = world(1, Duration::ZERO, quiet_options());
    *w.cloud.reject_with.lock().unwrap() = Some("FailedOperation.NotSupportScalar".into());
    w.metrics
        .demand
        .lock()
        .unwrap()
        .insert("link-00000000".into(), (100.0, 14_000.0));
    // The rescale by hand below would hold the proxy for `manual_hold` (issue 12; tested
    // in tests/control_e2e.rs): off here, so the proxy is decided at once.
    let mut pol = (*policy_for(1)).clone();
    pol.manual_hold = gaap_autoscaler::core::ManualHold::Off;
    let p = Arc::new(pol);
    run_once(&w.engine, std::slice::from_ref(&p), START).await;
    run_once(
        &w.engine,
        std::slice::from_ref(&p),
        START + Duration::from_secs(120),
    )
    .await;
    assert_eq!(w.cloud.calls.lock().unwrap().len(), 1, "not sent again");
    {
        let e = w.records();
        assert_eq!(e[0].outcome, Outcome::Failed);
        assert_eq!(
            e[0].error_code.as_deref(),
            Some("FailedOperation.NotSupportScalar")
        );
        assert_eq!(e[1].outcome, Outcome::Skipped);
        assert!(e[1].note.as_deref().unwrap().contains("NotSupportScalar"));
    }
    // The proxy changes (someone rescaled it by hand): it is considered again.
    *w.cloud.reject_with.lock().unwrap() = None;
    w.cloud.proxies.lock().unwrap()[0].bandwidth = 50;
    run_once(
        &w.engine,
        std::slice::from_ref(&p),
        START + Duration::from_secs(240),
    )
    .await;
    assert_eq!(w.cloud.calls.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn urgent_changes_are_sent_first() {
    let w = world(4, Duration::ZERO, quiet_options());
    // Proxies 0 and 2 need less (scale down), 1 and 3 need more (scale up).
    for i in 0..4 {
        let mut ps = w.cloud.proxies.lock().unwrap();
        ps[i].bandwidth = 100;
        let demand = if i % 2 == 0 { 5.0 } else { 300.0 };
        w.metrics
            .demand
            .lock()
            .unwrap()
            .insert(format!("link-{i:08}"), (demand, 14_000.0));
    }
    let mut p = (*policy_for(4)).clone();
    p.behavior.scale_down.stabilization = Duration::ZERO;
    run_once(&w.engine, &[Arc::new(p)], START).await;
    let calls = w.cloud.calls.lock().unwrap();
    let urgent: Vec<bool> = calls.iter().map(|c| c.0.urgent).collect();
    assert_eq!(urgent, vec![true, true, false, false]);
}

#[tokio::test(start_paused = true)]
async fn reconcile_resends_with_the_same_token_or_abandons() {
    let w = world(2, Duration::ZERO, quiet_options());
    // Two decisions logged as planned, never answered (a crash between log and call).
    let ids: Vec<String> = [(0usize, 60u64), (1, 3600)]
        .into_iter()
        .map(|(i, age)| log_pending(&w, i, START - Duration::from_secs(age)))
        .collect();
    w.engine.set_policies(&[policy_for(2)]);
    let s = w.engine.reconcile(START).await.unwrap();
    assert_eq!((s.applied, s.abandoned), (1, 1), "{s:?}");
    let calls = w.cloud.calls.lock().unwrap();
    assert_eq!(calls.len(), 1, "only the fresh one is re-sent");
    assert_eq!(calls[0].0.client_token, ids[0], "the same ClientToken");
    drop(calls);
    let e = w.records();
    // Oldest first: the hour-old decision is abandoned, the fresh one re-sent.
    assert_eq!(e[0].id, ids[1]);
    assert_eq!(e[0].outcome, Outcome::Failed);
    assert_eq!(e[0].error_code.as_deref(), Some("Reconcile.Abandoned"));
    assert_eq!(e[1].id, ids[0]);
    assert_eq!(e[1].outcome, Outcome::Applied);
    assert!(w.engine.journal.pending().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn completion_is_logged_when_the_proxy_is_running_again() {
    let w = world(
        1,
        Duration::ZERO,
        EngineOptions {
            watch_interval: Duration::from_secs(5),
            ..EngineOptions::default()
        },
    );
    w.metrics
        .demand
        .lock()
        .unwrap()
        .insert("link-00000000".into(), (100.0, 14_000.0));
    run_once(&w.engine, &[policy_for(1)], START).await;
    let e = w.records();
    assert_eq!(e[0].completed_at, Some(START + Duration::from_secs(5)));
}

// ---- Reconciliation, dry runs and stale views (issue: safety under attack) ----

/// Logs, for `link-{i:08}` at 20/2, the decision to go to 50 Mbps at `t`, as planned and
/// never answered (the process died between the log and the call). The reading, 18 Mbps
/// (90 % of 20), is below the saturation threshold (0.95 × capacity), so the decision is
/// the plain one-step scale-up (18 / 0.7 = 25.7 → 50), not a saturated jump.
fn log_pending(w: &World, i: usize, t: Timestamp) -> String {
    let p = fixtures::policy();
    let mut px = fixtures::proxy(20, 2);
    px.id = format!("link-{i:08}");
    let d = gaap_autoscaler::core::decide(
        &p,
        &px,
        Some(&fixtures::ladder()),
        &fixtures::observe(18.0, 14_000.0, t),
        &Default::default(),
        t,
    );
    assert_eq!((d.bandwidth_from, d.bandwidth_to), (20, 50));
    let rec = DecisionRecord::from_decision(
        &d,
        &gaap_autoscaler::store::RecordContext {
            mode: Mode::Live,
            outcome: Outcome::Planned,
            proxy: &px,
            ladder: None,
            observation: &Observation::default(),
            policy: &p,
            note: None,
        },
    );
    w.journal.append(&rec).unwrap()
}

/// A new engine over the same journal and cloud: a restart.
fn restart(w: &World, options: EngineOptions) -> Arc<Engine<FakeCloud, FakeMetrics>> {
    Engine::new(
        w.cloud.clone(),
        w.metrics.clone(),
        w.journal.clone(),
        Arc::new(Stats::new()),
        options,
        Clock::starting_at(START),
    )
    .unwrap()
}

fn demand_all(w: &World, n: usize, bw: f64) {
    for i in 0..n {
        w.metrics
            .demand
            .lock()
            .unwrap()
            .insert(format!("link-{i:08}"), (bw, 14_000.0));
    }
}

fn record(w: &World, id: &str) -> DecisionRecord {
    w.journal.get(id).unwrap().unwrap()
}

/// `run --dry-run` never sends a modifying call, reconciliation included: a decision
/// logged without an answer stays pending and is reported as such.
/// (Failed before the fix: reconciliation re-sent it under --dry-run.)
#[tokio::test(start_paused = true)]
async fn dry_run_reconciliation_sends_nothing_and_keeps_decisions_pending() {
    let w = world(1, Duration::ZERO, quiet_options());
    let id = log_pending(&w, 0, START - Duration::from_secs(60));
    let dry = restart(
        &w,
        EngineOptions {
            dry_run: true,
            ..quiet_options()
        },
    );
    dry.set_policies(&[policy_for(1)]);
    let s = dry.reconcile(START).await.unwrap();
    assert_eq!(s.kept, 1, "{s:?}");
    assert_eq!(s.settled(), 0, "{s:?}");
    demand_all(&w, 1, 100.0);
    let reports = run_once(&dry, &[policy_for(1)], START).await;
    assert!(w.cloud.calls.lock().unwrap().is_empty());
    assert_eq!(reports[0].dry_run_changes, 1, "{reports:?}");
    assert_eq!(reports[0].changes, 0);
    assert_eq!(record(&w, &id).outcome, Outcome::Planned);
    assert_eq!(w.journal.pending().unwrap().len(), 1);
    // The dry run's own decision supersedes nothing: a live restart re-sends it.
    let live = restart(&w, quiet_options());
    live.set_policies(&[policy_for(1)]);
    let s = live.reconcile(START).await.unwrap();
    assert_eq!(s.applied, 1, "{s:?}");
    assert_eq!(record(&w, &id).outcome, Outcome::Applied);
}

/// A failed start-up reconciliation never leads to a second change: while it fails, the
/// proxy with a decision logged without an answer is not decided again; once it succeeds,
/// that decision is re-sent with its own token, and a later restart sends nothing more.
/// (Failed before the fix: the next pass decided again with a new token and applied, and
/// the following restart re-sent the old decision: two changes for one need.)
#[tokio::test(start_paused = true)]
async fn a_failed_reconciliation_never_leads_to_a_second_change() {
    let w = world(2, Duration::ZERO, quiet_options());
    let old = log_pending(&w, 0, START - Duration::from_secs(30));
    let engine = restart(&w, quiet_options());
    engine.set_policies(&[policy_for(2)]);
    demand_all(&w, 2, 100.0);
    // The start-up reconciliation and its retry before the first pass both fail.
    *w.cloud.fail_lists.lock().unwrap() = 2;
    assert!(engine.reconcile(START).await.is_err());
    assert_eq!(engine.unreconciled(), 1);
    let r = run_once(&engine, &[policy_for(2)], START).await;
    assert_eq!(
        (r[0].evaluated, r[0].unreconciled, r[0].changes),
        (1, 1, 1),
        "{r:?}"
    );
    {
        let calls = w.cloud.calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0.proxy_id, "link-00000001", "the other proxy acts");
    }
    // The next pass's retry succeeds: the old decision is re-sent with its own token.
    let t = START + Duration::from_secs(30);
    run_once(&engine, &[policy_for(2)], t).await;
    let to_0: Vec<String> = w
        .cloud
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(c, _)| c.proxy_id == "link-00000000")
        .map(|(c, _)| c.client_token.clone())
        .collect();
    assert_eq!(to_0, vec![old.clone()], "one change, under the old token");
    assert_eq!(record(&w, &old).outcome, Outcome::Applied);
    assert_eq!(engine.unreconciled(), 0);
    // A restart finds nothing to re-send.
    let again = restart(&w, quiet_options());
    again.set_policies(&[policy_for(2)]);
    let s = again.reconcile(t).await.unwrap();
    assert_eq!(s, Default::default());
    let n0 = w
        .cloud
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(c, _)| c.proxy_id == "link-00000000")
        .count();
    assert_eq!(n0, 1);
}

/// A pending decision superseded by a newer decision for the same proxy is closed and
/// never sent, whether the newer one is pending too or was answered.
/// (Failed before the fix: both were re-sent, old tokens first.)
#[tokio::test(start_paused = true)]
async fn a_superseded_pending_decision_is_closed_and_never_sent() {
    let w = world(2, Duration::ZERO, quiet_options());
    // Proxy 0: two pending decisions; only the newer may be re-sent.
    let older = log_pending(&w, 0, START - Duration::from_secs(90));
    let newer = log_pending(&w, 0, START - Duration::from_secs(60));
    // Proxy 1: a pending decision followed by a newer, answered one.
    let stale = log_pending(&w, 1, START - Duration::from_secs(90));
    let answered = log_pending(&w, 1, START - Duration::from_secs(60));
    w.journal
        .record_outcome(
            &answered,
            Outcome::Applied,
            &gaap_autoscaler::store::OutcomeUpdate::default(),
        )
        .unwrap();
    let engine = restart(&w, quiet_options());
    engine.set_policies(&[policy_for(2)]);
    let s = engine.reconcile(START).await.unwrap();
    assert_eq!((s.superseded, s.applied), (2, 1), "{s:?}");
    let tokens: Vec<String> = w
        .cloud
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|(c, _)| c.client_token.clone())
        .collect();
    assert_eq!(tokens, vec![newer.clone()]);
    for id in [&older, &stale] {
        let r = record(&w, id);
        assert_eq!(r.outcome, Outcome::Failed);
        assert_eq!(r.error_code.as_deref(), Some("Reconcile.Superseded"));
    }
    assert!(w.journal.pending().unwrap().is_empty());
}

/// "The proxy is at the decision's from-values" alone is not enough to re-send: the same
/// policy must still manage it, in live mode, and it must be RUNNING.
#[tokio::test(start_paused = true)]
async fn reconciliation_resends_only_for_the_same_live_policy_and_a_running_proxy() {
    type Setup = fn(&World) -> Vec<Arc<Policy>>;
    let cases: &[(&str, Setup, Option<&str>)] = &[
        (
            "the proxy is ADJUSTING",
            |w| {
                w.cloud.proxies.lock().unwrap()[0].status = ProxyStatus::Adjusting;
                vec![policy_for(1)]
            },
            Some("Reconcile.Abandoned"),
        ),
        (
            "no policy manages it now",
            |_| vec![],
            Some("Reconcile.Abandoned"),
        ),
        (
            "another policy manages it now",
            |_| {
                let mut p = (*policy_for(1)).clone();
                p.name = "other".into();
                vec![Arc::new(p)]
            },
            Some("Reconcile.Abandoned"),
        ),
        (
            "its policy is in dry-run mode now",
            |_| {
                let mut p = (*policy_for(1)).clone();
                p.mode = Mode::DryRun;
                vec![Arc::new(p)]
            },
            None,
        ),
    ];
    for (what, setup, closed_with) in cases {
        let w = world(1, Duration::ZERO, quiet_options());
        let id = log_pending(&w, 0, START - Duration::from_secs(60));
        let policies = setup(&w);
        let engine = restart(&w, quiet_options());
        engine.set_policies(&policies);
        engine.reconcile(START).await.unwrap();
        assert!(
            w.cloud.calls.lock().unwrap().is_empty(),
            "{what}: nothing sent"
        );
        let r = record(&w, &id);
        match closed_with {
            Some(code) => assert_eq!(r.error_code.as_deref(), Some(*code), "{what}"),
            None => assert_eq!(r.outcome, Outcome::Planned, "{what}: stays pending"),
        }
    }
}

/// A change re-sent by reconciliation starts its cooldown like any applied change.
/// (Failed before the fix: no cooldown stamp, so the next pass could scale straight back.)
#[tokio::test(start_paused = true)]
async fn a_reconciled_change_stamps_its_cooldown() {
    let w = world(1, Duration::ZERO, quiet_options());
    log_pending(&w, 0, START - Duration::from_secs(60));
    let engine = restart(&w, quiet_options());
    engine.set_policies(&[policy_for(1)]);
    let s = engine.reconcile(START).await.unwrap();
    assert_eq!(s.applied, 1);
    let states: HashMap<_, _> = w.journal.load_all_states().unwrap().into_iter().collect();
    let st = &states[&(fixtures::policy().name, "link-00000000".to_string())];
    assert_eq!(
        st.bandwidth.last_up,
        Some(START),
        "applied now: stamped now"
    );
    assert_eq!(st.concurrent.last_up, None);
}

/// A decision made on a proxy list that grew old is re-checked before it is sent: a proxy
/// that moved meanwhile is not sent (closed in the log), one that did not move is.
/// (Failed before the fix: both were sent, the first from values 30 s out of date.)
#[tokio::test(start_paused = true)]
async fn a_stale_view_is_rechecked_before_sending() {
    let w = world(2, Duration::ZERO, quiet_options());
    demand_all(&w, 2, 100.0);
    *w.cloud.list_delay.lock().unwrap() = Duration::from_secs(35);
    *w.cloud.during_list.lock().unwrap() = Some(Box::new(|ps: &mut Vec<ProxyState>| {
        // An operator resizes proxy 0 while the listing is slow.
        ps[0].bandwidth = 500;
        ps[0].concurrent = 20;
    }));
    let r = run_once(&w.engine, &[policy_for(2)], START).await;
    assert_eq!((r[0].changes, r[0].stale), (1, 1), "{r:?}");
    let calls = w.cloud.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0.proxy_id, "link-00000001");
    let moved = w
        .records()
        .into_iter()
        .find(|r| r.proxy_id == "link-00000000")
        .unwrap();
    assert_eq!(moved.outcome, Outcome::Failed);
    assert_eq!(moved.error_code.as_deref(), Some("Stale.ProxyMoved"));
    assert!(w.journal.pending().unwrap().is_empty());
    // A fresh listing is not re-checked: one read per pass.
    let w = world(1, Duration::ZERO, quiet_options());
    demand_all(&w, 1, 100.0);
    run_once(&w.engine, &[policy_for(1)], START).await;
    assert_eq!(*w.cloud.lists.lock().unwrap(), 1);
}

/// A dry run (the flag or the policy's mode) never writes controller state into the
/// store: it must not change what the live daemon does next. A live pass does.
/// (Failed before the fix: every pass saved its next state whatever the mode.)
#[tokio::test(start_paused = true)]
async fn dry_runs_leave_the_stored_state_alone() {
    let cases = [
        (
            "--dry-run",
            EngineOptions {
                dry_run: true,
                ..quiet_options()
            },
            Mode::Live,
            false,
        ),
        ("mode = dry-run", quiet_options(), Mode::DryRun, false),
        ("live", quiet_options(), Mode::Live, true),
    ];
    for (what, options, mode, stored) in cases {
        let w = world(1, Duration::ZERO, options);
        demand_all(&w, 1, 100.0);
        let mut p = (*policy_for(1)).clone();
        p.mode = mode;
        run_once(&w.engine, &[Arc::new(p)], START).await;
        let states = w.journal.load_all_states().unwrap();
        assert_eq!(!states.is_empty(), stored, "{what}: {states:?}");
    }
}

/// A proxy that cannot be scaled says the same every pass: one record, counted.
/// (Failed before the fix: a new `skipped` record every pass.)
#[tokio::test(start_paused = true)]
async fn identical_skips_are_counted_like_holds() {
    let w = world(1, Duration::ZERO, quiet_options());
    w.cloud.proxies.lock().unwrap()[0].scalarable = 0;
    demand_all(&w, 1, 100.0);
    for i in 0..5 {
        run_once(
            &w.engine,
            &[policy_for(1)],
            START + Duration::from_secs(30 * i),
        )
        .await;
    }
    let r = w.records();
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!((r[0].outcome, r[0].repeats), (Outcome::Skipped, 4));
}

/// A change whose answer could not be read (ClientError.OutcomeUnknown) stays pending: the
/// proxy is not decided again until reconciliation confirms or re-sends it under the same
/// token, so an unknown outcome never leads to a second change.
/// (Failed before the fix: it was logged failed and the next pass sent a new decision.)
#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_stays_pending_and_is_reconciled_with_the_same_token() {
    let w = world(1, Duration::ZERO, quiet_options());
    demand_all(&w, 1, 100.0);
    *w.cloud.reject_with.lock().unwrap() = Some("unknown".into());
    run_once(&w.engine, &[policy_for(1)], START).await;
    let first = w.cloud.calls.lock().unwrap()[0].0.client_token.clone();
    assert_eq!(record(&w, &first).outcome, Outcome::Planned);
    assert_eq!(w.engine.unreconciled(), 1);
    // The next pass reconciles first: the same token, now answered.
    *w.cloud.reject_with.lock().unwrap() = None;
    run_once(&w.engine, &[policy_for(1)], START + Duration::from_secs(30)).await;
    let tokens: Vec<String> = w
        .cloud
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|(c, _)| c.client_token.clone())
        .collect();
    assert_eq!(tokens[1], first, "re-sent under its own token: {tokens:?}");
    assert_eq!(record(&w, &first).outcome, Outcome::Applied);
}

/// "Logged before acted on": when the log cannot take a pass (its disk is full), nothing
/// is sent and the pass reports the error. Needs root for the tmpfs (CI runs as root); it
/// fails, not skips, without it.
#[tokio::test(start_paused = true)]
async fn a_failed_append_means_no_call() {
    let tmp = tempfile::tempdir().unwrap();
    let _mount = support::Mount::tmpfs(tmp.path(), "2m");
    let journal = Arc::new(DecisionLog::open(tmp.path().join("data")).unwrap());
    // Fill the disk to the last byte.
    support::fill_disk(tmp.path(), 4 << 20);
    let n = 400;
    let w = world_with(
        n,
        Duration::ZERO,
        quiet_options(),
        journal,
        tempfile::tempdir().unwrap(),
    );
    demand_all(&w, n, 100.0);
    let r = run_once(&w.engine, &[policy_for(n)], START).await;
    let err = r[0].error.clone().unwrap_or_default();
    assert!(err.starts_with("decision log:"), "{r:?}");
    assert_eq!(r[0].changes, 0);
    assert!(w.cloud.calls.lock().unwrap().is_empty(), "nothing sent");
}

/// A run-time pause holds the proxy (logged `guard.paused` with who, why and until, no
/// call) until its time is over; then the next pass acts. Under paused tokio time.
#[tokio::test(start_paused = true)]
async fn a_pause_expires_by_itself() {
    use gaap_autoscaler::daemon::control::{ControlPort, PauseRequest};
    let w = world(1, Duration::ZERO, quiet_options());
    let p = policy_for(1);
    w.engine.set_policies(std::slice::from_ref(&p));
    w.metrics
        .demand
        .lock()
        .unwrap()
        .insert("link-00000000".into(), (100.0, 14_000.0));
    let status = w
        .engine
        .pause(PauseRequest {
            policy: p.name.clone(),
            proxy: None,
            direction: "up".into(),
            for_: Some("2h".into()),
            reason: "migration".into(),
            by: "ops@host".into(),
        })
        .await
        .unwrap();
    assert_eq!(status.pauses.len(), 1);
    let now = w.engine.clock.now();
    assert_eq!(
        status.pauses[0].until,
        Some(now + Duration::from_secs(7200))
    );

    // Within the two hours: evaluated, held, nothing sent.
    let mut calls = Vec::new();
    let r = w.engine.run_pass(&p, now, &mut calls).await;
    assert_eq!((r.evaluated, r.changes), (1, 0));
    let recs = w.records();
    let held = recs.last().unwrap();
    assert_eq!(held.outcome, Outcome::Held);
    let reason = held
        .reason_details
        .iter()
        .find(|r| r.code == "guard.paused")
        .unwrap_or_else(|| panic!("{held:#?}"));
    for needle in ["ops@host", "migration", "until"] {
        assert!(reason.detail.contains(needle), "{reason:?}");
    }
    assert!(w.cloud.calls.lock().unwrap().is_empty());

    // Two hours later (tokio time): the pause is over, in status and in the next pass.
    tokio::time::advance(Duration::from_secs(7200)).await;
    assert!(w.engine.status().pauses.is_empty());
    let later = w.engine.clock.now();
    let r = w.engine.run_pass(&p, later, &mut calls).await;
    for h in calls {
        h.await.unwrap();
    }
    assert_eq!(r.changes, 1, "{r:?}");
    assert_eq!(w.cloud.calls.lock().unwrap().len(), 1);
    // Forgotten by the log too: a restarted engine does not bring it back.
    assert!(w.journal.load_pauses().unwrap().is_empty());
}

/// A proxy rescaled by hand is held for `manual_hold` (logged observed.manual_change, no
/// call); a restarted engine keeps the hold (it is controller state), and `resume` ends
/// it, so the next pass acts.
#[tokio::test(start_paused = true)]
async fn a_manual_hold_survives_a_restart_and_resume_ends_it() {
    use gaap_autoscaler::daemon::control::{ControlPort, ResumeRequest};
    let w = world(1, Duration::ZERO, quiet_options());
    let p = policy_for(1);
    demand_all(&w, 1, 100.0);
    let calls = || w.cloud.calls.lock().unwrap().len();
    run_once(&w.engine, std::slice::from_ref(&p), START).await;
    assert_eq!(calls(), 1);
    // Someone takes it back down to 10 Mbps.
    w.cloud.proxies.lock().unwrap()[0].bandwidth = 10;
    let t1 = START + Duration::from_secs(120);
    run_once(&w.engine, std::slice::from_ref(&p), t1).await;
    assert_eq!(calls(), 1, "held: no call");
    let last = w.records().pop().unwrap();
    assert_eq!(last.outcome, Outcome::Held);
    assert!(
        last.reasons
            .iter()
            .any(|r| r.ends_with("observed.manual_change")),
        "{last:#?}"
    );
    let engine = restart(&w, quiet_options());
    engine.set_policies(std::slice::from_ref(&p));
    let held = engine.status().manual_holds;
    assert_eq!(held.len(), 1, "the hold survives the restart");
    assert_eq!(held[0].proxy, "link-00000000");
    assert_eq!(held[0].change.unwrap().to.0, 10);
    run_once(
        &engine,
        std::slice::from_ref(&p),
        t1 + Duration::from_secs(120),
    )
    .await;
    assert_eq!(calls(), 1, "still held after the restart");
    let status = engine
        .resume(ResumeRequest {
            policy: p.name.clone(),
            proxy: Some("link-00000000".into()),
            direction: None,
            by: "ops".into(),
        })
        .await
        .unwrap();
    assert_eq!(status.resumed, 1);
    assert!(status.manual_holds.is_empty());
    run_once(
        &engine,
        std::slice::from_ref(&p),
        t1 + Duration::from_secs(240),
    )
    .await;
    assert_eq!(calls(), 2, "resumed: the next pass acts");
}

/// `[predictive]` in the daemon: the seasonal memory of a proxy met for the first time is
/// warmed from one history query, so the very first pass can pre-scale for the hour
/// ahead; the query is made once per proxy, and not at all with predictive off.
#[tokio::test(start_paused = true)]
async fn the_first_pass_is_warmed_from_history_and_pre_scales() {
    use gaap_autoscaler::policy::PredictiveMode;
    // (mode, history answer, pre-scales, history queries)
    type Case = (PredictiveMode, Option<Result<History, String>>, bool, usize);
    let cases: Vec<Case> = vec![
        (PredictiveMode::Scale, Some(Ok(busy_hours())), true, 1),
        (
            PredictiveMode::ForecastOnly,
            Some(Ok(busy_hours())),
            false,
            1,
        ),
        // A failed history query: logged, the memory learns online, not asked again.
        (PredictiveMode::Scale, Some(Err("down".into())), false, 1),
        (PredictiveMode::Off, Some(Ok(busy_hours())), false, 0),
    ];
    for (mode, history, pre_scales, asks) in cases {
        let w = world(1, Duration::ZERO, quiet_options());
        let mut p = (*policy_for(1)).clone();
        p.predictive.mode = mode;
        let p = Arc::new(p);
        *w.metrics.history.lock().unwrap() = history;
        // Quiet now (10 Mbps at 0.7 needs 20, the current value): only the forecast raises.
        w.metrics
            .demand
            .lock()
            .unwrap()
            .insert("link-00000000".into(), (10.0, 10_000.0));
        for i in 1..=3 {
            w.engine
                .run_pass(&p, START + Duration::from_secs(30 * i), &mut Vec::new())
                .await;
        }
        let label = format!("{mode:?}");
        let asked = w.metrics.history_asks.lock().unwrap().clone();
        assert_eq!(asked.len(), asks, "{label}: {asked:?}");
        for a in &asked {
            assert_eq!(a, &["link-00000000".to_string()], "{label}");
        }
        let recs = w.records();
        let first = &recs[0];
        let ahead = first
            .reason_details
            .iter()
            .any(|r| r.code == "predictive.ahead");
        // forecast-only says what it would do, and does not do it.
        assert_eq!(
            ahead,
            mode != PredictiveMode::Off
                && asks == 1
                && matches!(w.metrics.history.lock().unwrap().as_ref(), Some(Ok(_))),
            "{label}: {first:#?}"
        );
        assert_eq!(
            first.bandwidth_to > first.bandwidth_from,
            pre_scales,
            "{label}: {first:#?}"
        );
    }
}

/// Three days of hourly highs of 140 Mbps in START's hour (need 200 at 0.7), by proxy and
/// signal, as the warm-up query answers them.
fn busy_hours() -> History {
    let hour = START.secs() - START.secs() % 3600;
    let points = (1..=3)
        .map(|d| (Timestamp::from_secs(hour - d * 86_400), 140.0))
        .collect();
    History::from([(("link-00000000".into(), "bandwidth".into()), points)])
}

/// A `resume` while a pass is in flight is not undone by that pass: here a saturated
/// reading overrides a manual hold (`manual_hold_allows_saturation`), and while its call is
/// on its way the operator resumes the proxy; when the call answers, the state the pass
/// keeps must not bring the hold back.
#[tokio::test(start_paused = true)]
async fn a_resume_during_a_pass_is_not_undone_by_it() {
    use gaap_autoscaler::core::ManualHold;
    use gaap_autoscaler::daemon::control::{ControlPort, ResumeRequest};
    let w = world(1, Duration::from_secs(20), quiet_options());
    let mut pol = (*policy_for(1)).clone();
    pol.manual_hold = ManualHold::Forever;
    pol.manual_hold_allows_saturation = true;
    let p = Arc::new(pol);
    demand_all(&w, 1, 30.0);
    run_once(&w.engine, std::slice::from_ref(&p), START).await;
    assert_eq!(w.cloud.calls.lock().unwrap().len(), 1);
    // An operator takes it down to 10 Mbps (demand is low now): held, forever.
    w.cloud.proxies.lock().unwrap()[0].bandwidth = 10;
    demand_all(&w, 1, 1.0);
    let t1 = START + Duration::from_secs(120);
    run_once(&w.engine, std::slice::from_ref(&p), t1).await;
    assert_eq!(w.engine.status().manual_holds.len(), 1);
    assert_eq!(w.cloud.calls.lock().unwrap().len(), 1, "held: no call");
    // Saturated (10 Mbps on 10): the hold lets the scale-up through; its call takes 20 s.
    demand_all(&w, 1, 10.0);
    let engine = w.engine.clone();
    let pass = {
        let p = p.clone();
        tokio::spawn(async move {
            run_once(
                &engine,
                std::slice::from_ref(&p),
                t1 + Duration::from_secs(120),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        w.cloud.calls.lock().unwrap().len(),
        2,
        "the call is on its way"
    );
    assert!(!pass.is_finished());
    let status = w
        .engine
        .resume(ResumeRequest {
            policy: p.name.clone(),
            proxy: Some("link-00000000".into()),
            direction: None,
            by: "ops".into(),
        })
        .await
        .unwrap();
    assert!(status.manual_holds.is_empty());
    pass.await.unwrap();
    assert_eq!(
        w.cloud.calls.lock().unwrap().len(),
        2,
        "the saturated scale-up was sent"
    );
    let holds = w.engine.status().manual_holds;
    assert!(
        holds.is_empty(),
        "the pass brought the hold back: {holds:?}"
    );
}

/// Under `[ha]` an operator may talk to any daemon: a pause taken by the follower holds
/// on the leader, and a resume taken by the follower ends the leader's pause and manual
/// hold (real etcd, real election; the shared `control` key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pauses_and_resumes_reach_every_daemon_through_etcd() {
    use gaap_autoscaler::core::{Direction, ManualHold, Scope};
    use gaap_autoscaler::daemon::control::{ControlPort, PauseRequest, ResumeRequest};
    use gaap_autoscaler::daemon::engine::HaParts;
    use gaap_autoscaler::ha::{Etcd, Leadership, SharedStore, election};
    let cluster = support::etcd::EtcdCluster::start(1);
    cluster.wait_healthy(Duration::from_secs(30));
    let etcd = Arc::new(Etcd::new(&cluster.urls(), Duration::from_secs(5)).unwrap());
    let mut pol = (*policy_for(1)).clone();
    pol.manual_hold = ManualHold::Forever;
    let p = Arc::new(pol);
    let cloud = Arc::new(FakeCloud::default());
    {
        let mut px = fixtures::proxy(20, 2);
        px.id = "link-00000000".into();
        *cloud.proxies.lock().unwrap() = vec![px];
        *cloud.clock.lock().unwrap() = Some(Clock::starting_at(START));
    }
    let metrics = Arc::new(FakeMetrics::default());
    let mut daemons = Vec::new();
    let mut dirs = Vec::new();
    for name in ["a", "b"] {
        let me = Arc::new(Leadership::new(name, Duration::from_secs(10), None));
        tokio::spawn(election::run(etcd.clone(), me.clone(), "/t".into()));
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(DecisionLog::open(dir.path()).unwrap());
        dirs.push(dir);
        let engine = Engine::new_shared(
            cloud.clone(),
            metrics.clone(),
            journal,
            Arc::new(Stats::new()),
            quiet_options(),
            Clock::starting_at(START),
            HaParts {
                store: Arc::new(SharedStore::new(etcd.clone(), "/t", me.clone())),
                on_takeover: Box::new(|| {}),
            },
        )
        .unwrap();
        engine.set_policies(std::slice::from_ref(&p));
        daemons.push((me, engine));
    }
    let started = std::time::Instant::now();
    while !daemons.iter().any(|(me, _)| me.may_act()) {
        assert!(started.elapsed() < Duration::from_secs(30), "nobody leads");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (leader, follower) = if daemons[0].0.may_act() {
        (daemons[0].1.clone(), daemons[1].1.clone())
    } else {
        (daemons[1].1.clone(), daemons[0].1.clone())
    };
    let pass = |e: &Arc<Engine<FakeCloud, FakeMetrics>>, secs: u64| {
        let (e, p) = (e.clone(), p.clone());
        async move {
            let mut calls = Vec::new();
            let r = e
                .run_pass(&p, START + Duration::from_secs(secs), &mut calls)
                .await;
            for h in calls {
                h.await.unwrap();
            }
            r
        }
    };

    // The follower takes a pause: the leader's next pass applies it.
    follower
        .pause(PauseRequest {
            policy: p.name.clone(),
            proxy: None,
            direction: "down".into(),
            for_: None,
            reason: "migration".into(),
            by: "ops@b".into(),
        })
        .await
        .unwrap();
    assert!(
        leader.status().pauses.is_empty(),
        "not before its next pass"
    );
    pass(&leader, 30).await;
    let pauses = leader.status().pauses;
    assert_eq!(pauses.len(), 1, "{pauses:?}");
    assert_eq!(pauses[0].scope, Scope::Policy(p.name.clone()));
    assert_eq!(pauses[0].direction, Direction::Down);
    assert_eq!(pauses[0].by, "ops@b");

    // The leader scales up (saturated), then an operator takes the proxy back down by
    // hand: the leader holds it, forever.
    metrics
        .demand
        .lock()
        .unwrap()
        .insert("link-00000000".into(), (30.0, 14_000.0));
    let r = pass(&leader, 60).await;
    assert_eq!(r.changes, 1, "{r:?}");
    cloud.proxies.lock().unwrap()[0].bandwidth = 10;
    metrics
        .demand
        .lock()
        .unwrap()
        .insert("link-00000000".into(), (1.0, 14_000.0));
    pass(&leader, 180).await;
    assert_eq!(leader.status().manual_holds.len(), 1);

    // The follower takes the resume: the pause is gone everywhere, the hold ends on the
    // leader at its next pass.
    let status = follower
        .resume(ResumeRequest {
            policy: p.name.clone(),
            proxy: None,
            direction: None,
            by: "ops@b".into(),
        })
        .await
        .unwrap();
    assert!(status.pauses.is_empty());
    pass(&leader, 210).await;
    assert!(leader.status().pauses.is_empty());
    let holds = leader.status().manual_holds;
    assert!(
        holds.is_empty(),
        "the follower's resume did not end the leader's hold: {holds:?}"
    );
    // Once applied, a resume is not applied again: a new hand change holds again.
    cloud.proxies.lock().unwrap()[0].bandwidth = 20;
    pass(&leader, 300).await;
    pass(&leader, 330).await;
    assert_eq!(
        leader.status().manual_holds.len(),
        1,
        "a later hand change holds"
    );
    for (me, _) in &daemons {
        me.resign();
    }
}

/// The first daemon to share pauses (etcd's `control` key never written) shares the
/// pauses its own log holds instead of dropping them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemons_own_pauses_become_the_shared_ones_at_first() {
    use gaap_autoscaler::core::{Direction, Pause, Scope};
    use gaap_autoscaler::daemon::control::ControlPort;
    use gaap_autoscaler::daemon::engine::HaParts;
    use gaap_autoscaler::ha::{Etcd, Leadership, SharedStore};
    let cluster = support::etcd::EtcdCluster::start(1);
    cluster.wait_healthy(Duration::from_secs(30));
    let etcd = Arc::new(Etcd::new(&cluster.urls(), Duration::from_secs(5)).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(DecisionLog::open(dir.path()).unwrap());
    let pause = Pause {
        scope: Scope::Proxy("link-00000000".into()),
        direction: Direction::Up,
        since: START,
        until: None,
        reason: "before the upgrade".into(),
        by: "ops".into(),
    };
    journal.save_pause(&pause).unwrap();
    let me = Arc::new(Leadership::new("a", Duration::from_secs(10), None));
    let store = Arc::new(SharedStore::new(etcd.clone(), "/first", me));
    let engine = Engine::new_shared(
        Arc::new(FakeCloud::default()),
        Arc::new(FakeMetrics::default()),
        journal.clone(),
        Arc::new(Stats::new()),
        quiet_options(),
        Clock::starting_at(START),
        HaParts {
            store: store.clone(),
            on_takeover: Box::new(|| {}),
        },
    )
    .unwrap();
    let p = policy_for(1);
    engine.set_policies(std::slice::from_ref(&p));
    // Not the leader: the pass only takes the shared control.
    engine.run_pass(&p, START, &mut Vec::new()).await;
    assert_eq!(engine.status().pauses, vec![pause.clone()]);
    assert_eq!(journal.load_pauses().unwrap(), vec![pause.clone()]);
    let (shared, rev) = store.control().await.unwrap();
    assert!(rev > 0);
    assert_eq!(shared.pauses, vec![pause]);
}
