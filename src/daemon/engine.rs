//! One evaluation pass of one policy: fleet → signals → decide → log → act.
//!
//! The decision itself is `core::decide`, the same function the simulation calls. This
//! module is the imperative shell around it: it reads the fleet and the metrics, keeps
//! controller state, writes every decision to the log *before* acting on it, sends
//! changes through the client (rate-limited, retried with the same ClientToken), and
//! records outcomes and completion.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use super::ports::{Cloud, Metrics, ModifyCall, ModifyResult, PolicyReadings, PortError};
use super::schedule::Clock;
use super::stats::Stats;
use crate::core::{self, ControllerState, Direction, Ladder, ProxyState, ProxyStatus, Verdict};
use crate::ha::SharedStore;
use crate::ha::shared::{RESUME_TTL, SharedResume};
use crate::policy::{Mode, Policy};
use crate::store::{
    DecisionLog, DecisionRecord, LogFilter, Outcome, OutcomeUpdate, RecordContext, StoreError,
};
use crate::time::Timestamp;
use futures_util::future::BoxFuture;

/// How the engine behaves, beyond the policies.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Log decisions, call nothing that modifies (whatever the policies say).
    pub dry_run: bool,
    /// How often the proxy list (membership, tags) and the ladders are re-read.
    pub fleet_refresh: Duration,
    /// Poll a changed proxy until it leaves ADJUSTING, then log completion.
    pub watch_completion: bool,
    pub watch_interval: Duration,
    pub watch_timeout: Duration,
    /// A logged change older than this is not re-sent at start-up.
    pub reconcile_max_age: Duration,
    /// A proxy listing older than this when changes are about to be sent is re-checked
    /// (each changing proxy's current values read again); a proxy that moved is not sent.
    pub max_view_age: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            dry_run: false,
            fleet_refresh: Duration::from_secs(300),
            watch_completion: true,
            watch_interval: Duration::from_secs(5),
            watch_timeout: Duration::from_secs(1800),
            reconcile_max_age: Duration::from_secs(900),
            max_view_age: Duration::from_secs(10),
        }
    }
}

#[derive(Default)]
struct FleetCache {
    proxies: Vec<ProxyState>,
    /// The evaluation time the proxy list was read for: passes of other policies at the
    /// same time share it (policies select disjoint proxies, so none of them changes what
    /// another one reads).
    proxies_for: Option<Timestamp>,
    /// When (engine clock) the reading of `proxies` started: the age of the view.
    proxies_read_at: Timestamp,
    ladders: HashMap<(String, String), Ladder>,
    loaded_at: Option<Timestamp>,
}

/// Why a proxy is left alone: a non-retryable rejection for the proxy as it was then.
#[derive(Clone, Debug)]
struct Blocked {
    code: String,
    snapshot: (u32, u32, ProxyStatus, i64),
}

fn snapshot(p: &ProxyState) -> (u32, u32, ProxyStatus, i64) {
    (p.bandwidth, p.concurrent, p.status.clone(), p.scalarable)
}

/// What a pass did (for logs, tests and `--once`).
#[derive(Debug, Default)]
pub struct PassReport {
    pub policy: String,
    pub time: Timestamp,
    pub evaluated: usize,
    /// Changes sent (live mode).
    pub changes: usize,
    /// Changes decided and logged as dry-run (nothing sent).
    pub dry_run_changes: usize,
    /// Proxies left out because a change of theirs is still in flight.
    pub busy: usize,
    /// Proxies left out because a decision of theirs is logged without an answer and
    /// reconciliation has not settled it yet (nothing new is decided for them meanwhile).
    pub unreconciled: usize,
    /// Changes not sent because the proxy had moved when the stale view was re-checked.
    pub stale: usize,
    /// Signal queries that failed (their proxies held).
    pub query_errors: usize,
    pub error: Option<String>,
    /// Under `[ha]`: this daemon does not lead, so nothing was evaluated.
    pub follower: bool,
}

/// What one pass reads of the fleet.
struct View {
    /// The proxies the policy selects, as listed.
    proxies: Vec<ProxyState>,
    ladders: HashMap<(String, String), Ladder>,
    /// When (engine clock) the listing was read: its age decides whether changes are
    /// re-checked before they are sent.
    read_at: Timestamp,
}

/// One proxy's decision in a pass, before the log took it.
struct Decided<'v> {
    key: (String, String),
    decision: core::Decision,
    /// The state the decision started from.
    state: ControllerState,
    proxy: &'v ProxyState,
    outcome: Outcome,
    mode: Mode,
}

/// A manual hold `resume` ended: (policy, proxy), the observation that started it, and
/// when it ended.
type EndedHold = ((String, String), Option<Timestamp>, Timestamp);

/// A logged change about to be sent.
struct Change {
    id: String,
    key: (String, String),
    decision: core::Decision,
    prev_state: ControllerState,
    proxy: ProxyState,
    billing_type: Option<i64>,
}

pub struct Engine<C: Cloud, M: Metrics> {
    pub cloud: Arc<C>,
    pub metrics: Arc<M>,
    pub journal: Arc<DecisionLog>,
    pub stats: Arc<Stats>,
    pub options: EngineOptions,
    pub clock: Clock,
    fleet: tokio::sync::Mutex<FleetCache>,
    states: Mutex<HashMap<(String, String), ControllerState>>,
    /// Proxies with a change in flight (sent, or being watched): not evaluated meanwhile.
    busy: Mutex<HashSet<String>>,
    blocked: Mutex<HashMap<String, Blocked>>,
    /// Per (policy, proxy): its last record, while it is a hold that later identical holds
    /// are counted on (see `DecisionRecord::repeats_hold`).
    last_holds: Mutex<HashMap<(String, String), DecisionRecord>>,
    /// Proxies with a decision logged as planned and never answered (from the log at
    /// start-up): their live passes wait until reconciliation settles the decision.
    unreconciled: Mutex<HashSet<String>>,
    /// (policy, proxy) whose seasonal memory this process has tried to warm from history
    /// (`[predictive]`): once each, at the first pass that meets the proxy.
    warmed: Mutex<HashSet<(String, String)>>,
    /// The manual holds `resume` ended in the last hour: (policy, proxy), when the hold's
    /// change was observed, when it was ended (engine time). A pass in flight at the
    /// resume keeps a state it read before, and must not bring such a hold back (see
    /// [`Engine::keep_state`]).
    ended_holds: Mutex<Vec<EndedHold>>,
    /// Under `[ha]`: the shared resumes applied here (or present at the first read of
    /// `prefix/control`, applied by whoever led then), and whether it was read yet.
    applied_resumes: Mutex<HashSet<SharedResume>>,
    control_synced: std::sync::atomic::AtomicBool,
    /// One reconciliation at a time (start-up, or retried before a pass).
    reconciling: tokio::sync::Mutex<()>,
    /// The running policies (for reconciliation: which policy manages a proxy now, and
    /// in which mode). Set by the driver at start and on every reload.
    policies: Mutex<Vec<Arc<Policy>>>,
    /// Applied changes not watched to completion (`watch_completion` off): for
    /// [`Engine::await_completion`] (`run --once`), as (decision id, proxy id).
    unwatched: Mutex<Vec<(String, String)>>,
    /// Reconciliation has not succeeded yet (or failed): retried before each pass.
    needs_reconcile: std::sync::atomic::AtomicBool,
    /// The operators' run-time pauses (issue 12), as kept in the log's control tree.
    pauses: Mutex<Vec<core::Pause>>,
    /// Under `[ha]`: where controller state and pending intents are shared (the sled log
    /// keeps the history either way). None: the sled log holds them too.
    shared: Option<Shared>,
}

/// What [`Engine::new_shared`] needs of `[ha]`.
pub struct HaParts {
    /// Shared state and pending intents in etcd, with the leadership that fences them.
    pub store: Arc<SharedStore>,
    /// Called on every takeover, before the first send (e.g. to seed the API budget).
    pub on_takeover: Box<dyn Fn() + Send + Sync>,
}

/// The engine's side of `[ha]`.
struct Shared {
    store: Arc<SharedStore>,
    /// The election term whose shared state is loaded (0: none yet).
    loaded_term: std::sync::atomic::AtomicU64,
    taking_over: tokio::sync::Mutex<()>,
    /// Called on every takeover, before the first send (the API budget's seed).
    on_takeover: Box<dyn Fn() + Send + Sync>,
}

impl<C: Cloud, M: Metrics> Engine<C, M> {
    /// Builds the engine and loads the persisted controller states.
    pub fn new(
        cloud: Arc<C>,
        metrics: Arc<M>,
        journal: Arc<DecisionLog>,
        stats: Arc<Stats>,
        options: EngineOptions,
        clock: Clock,
    ) -> Result<Arc<Self>, StoreError> {
        let states = journal.load_all_states()?.into_iter().collect();
        let unreconciled: HashSet<String> =
            journal.pending()?.into_iter().map(|r| r.proxy_id).collect();
        let pauses = journal.load_pauses()?;
        Ok(Arc::new(Self::build(
            (cloud, metrics, journal, stats),
            options,
            clock,
            states,
            unreconciled,
            pauses,
            None,
        )))
    }

    /// The engine of one daemon of `[ha]`: it acts only while `ha.store`'s leadership lets
    /// it; on each election won it loads the controller states and pending intents from
    /// etcd (not from its sled log), reconciles the intents, and calls `ha.on_takeover`
    /// (e.g. to seed the API budget) before its first send. Run-time pauses start from
    /// this daemon's own sled log; the shared ones in etcd replace them at the first pass
    /// (`sync_control`).
    pub fn new_shared(
        cloud: Arc<C>,
        metrics: Arc<M>,
        journal: Arc<DecisionLog>,
        stats: Arc<Stats>,
        options: EngineOptions,
        clock: Clock,
        ha: HaParts,
    ) -> Result<Arc<Self>, StoreError> {
        let pauses = journal.load_pauses()?;
        Ok(Arc::new(Self::build(
            (cloud, metrics, journal, stats),
            options,
            clock,
            HashMap::new(),
            HashSet::new(),
            pauses,
            Some(Shared {
                store: ha.store,
                loaded_term: std::sync::atomic::AtomicU64::new(0),
                taking_over: tokio::sync::Mutex::new(()),
                on_takeover: ha.on_takeover,
            }),
        )))
    }

    fn build(
        (cloud, metrics, journal, stats): (Arc<C>, Arc<M>, Arc<DecisionLog>, Arc<Stats>),
        options: EngineOptions,
        clock: Clock,
        states: HashMap<(String, String), ControllerState>,
        unreconciled: HashSet<String>,
        pauses: Vec<core::Pause>,
        shared: Option<Shared>,
    ) -> Self {
        let needs_reconcile = std::sync::atomic::AtomicBool::new(!unreconciled.is_empty());
        Engine {
            cloud,
            metrics,
            journal,
            stats,
            options,
            clock,
            fleet: tokio::sync::Mutex::new(FleetCache::default()),
            states: Mutex::new(states),
            busy: Mutex::new(HashSet::new()),
            blocked: Mutex::new(HashMap::new()),
            last_holds: Mutex::new(HashMap::new()),
            unreconciled: Mutex::new(unreconciled),
            warmed: Mutex::new(HashSet::new()),
            ended_holds: Mutex::new(Vec::new()),
            applied_resumes: Mutex::new(HashSet::new()),
            control_synced: std::sync::atomic::AtomicBool::new(false),
            reconciling: tokio::sync::Mutex::new(()),
            policies: Mutex::new(Vec::new()),
            needs_reconcile,
            unwatched: Mutex::new(Vec::new()),
            pauses: Mutex::new(pauses),
            shared,
        }
    }

    /// Under `[ha]`: whether this daemon leads now (always true without `[ha]`).
    pub fn may_act(&self) -> bool {
        self.shared
            .as_ref()
            .is_none_or(|s| s.store.leadership().may_act())
    }

    /// Under `[ha]`, before a leader's pass: if this election's shared state is not loaded
    /// yet, loads the controller states and the pending intents from etcd, marks the
    /// intents' proxies for reconciliation and seeds the budget. Ok(false): not the leader.
    async fn take_over(&self) -> Result<bool, crate::ha::SharedError> {
        use std::sync::atomic::Ordering;
        let Some(sh) = &self.shared else {
            return Ok(true);
        };
        let leadership = sh.store.leadership();
        if !leadership.may_act() {
            return Ok(false);
        }
        let term = leadership.term();
        if sh.loaded_term.load(Ordering::SeqCst) == term {
            return Ok(true);
        }
        let _one = sh.taking_over.lock().await;
        if sh.loaded_term.load(Ordering::SeqCst) == term {
            return Ok(true);
        }
        // What an earlier term of ours staged is its own; the shared state is the truth.
        sh.store.discard();
        let states = sh.store.load_states().await?;
        let pending = sh.store.pending().await?;
        for p in &pending {
            // The sled log may not have copied it yet: reconciliation answers it there.
            self.journal.upsert(p)?;
        }
        info!(
            states = states.len(),
            pending = pending.len(),
            instance = leadership.instance(),
            "took over as leader: shared controller states and pending intents loaded"
        );
        *self.states.lock().expect("lock") = states.into_iter().collect();
        *self.unreconciled.lock().expect("lock") =
            pending.into_iter().map(|r| r.proxy_id).collect();
        self.last_holds.lock().expect("lock").clear();
        self.needs_reconcile.store(true, Ordering::SeqCst);
        (sh.on_takeover)();
        sh.loaded_term.store(term, Ordering::SeqCst);
        Ok(true)
    }

    /// Under `[ha]`: writes what is staged for etcd (fenced). Ok without `[ha]`.
    async fn flush_shared(&self) -> Result<(), crate::ha::SharedError> {
        match &self.shared {
            Some(sh) => sh.store.flush().await,
            None => Ok(()),
        }
    }

    /// Under `[ha]`, a pass whose intents could not be written to etcd: its changes are
    /// not sent. In this daemon's log they are closed (`Ha.NotLeader` or `Ha.Unavailable`);
    /// an intent that did reach etcd is the leader's to reconcile, and its answer, copied
    /// from the shared log, supersedes this one.
    fn not_shared(&self, changes: Vec<Change>, why: &crate::ha::SharedError) {
        let code = match why {
            crate::ha::SharedError::NotLeader => "Ha.NotLeader",
            _ => "Ha.Unavailable",
        };
        for c in changes {
            let update = OutcomeUpdate {
                error_code: Some(code.into()),
                error_message: Some(format!("not sent: the intent could not be shared ({why})")),
                ..OutcomeUpdate::default()
            };
            // Staged too: if the intent did reach etcd (an answer lost on the way), the
            // next fenced write closes it there, so no later leader re-sends it.
            if let Err(e) = self.answer(&c.id, Outcome::Failed, &update) {
                error!(id = %c.id, error = %e, "cannot record the outcome");
            }
            self.keep_state(&c.key, c.prev_state, Mode::Live);
        }
    }

    /// Under `[ha]`: stages the log's current version of record `id` for etcd.
    fn share_record(&self, id: &str) {
        let Some(sh) = &self.shared else { return };
        match self.journal.get(id) {
            Ok(Some(r)) => {
                if let Err(e) = sh.store.stage_record(&r) {
                    error!(id, error = %e, "cannot stage a record for the shared log");
                }
            }
            Ok(None) => {}
            Err(e) => error!(id, error = %e, "cannot read a record to share it"),
        }
    }

    /// Records an answer in the log (and, under `[ha]`, stages it for etcd: the pending
    /// intent is deleted when it is written).
    fn answer(&self, id: &str, outcome: Outcome, update: &OutcomeUpdate) -> Result<(), StoreError> {
        self.journal.record_outcome(id, outcome, update)?;
        self.share_record(id);
        Ok(())
    }

    fn complete(&self, id: &str, at: Timestamp) {
        if let Err(e) = self.journal.record_completion(id, at) {
            error!(id, error = %e, "cannot record completion");
        }
        self.share_record(id);
    }

    /// The policies now running (call at start and on every reload).
    pub fn set_policies(&self, policies: &[Arc<Policy>]) {
        *self.policies.lock().expect("lock") = policies.to_vec();
        // Decisions left pending for a dry-run policy may be settled by the new set.
        if !self.unreconciled.lock().expect("lock").is_empty() {
            self.needs_reconcile
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// How many proxies wait for reconciliation.
    pub fn unreconciled(&self) -> usize {
        self.unreconciled.lock().expect("lock").len()
    }

    /// The proxies a policy selects, with fresh state, and the ladders they need.
    async fn fleet_for(&self, policy: &Policy, now: Timestamp) -> Result<View, PortError> {
        let mut cache = self.fleet.lock().await;
        let stale = cache
            .loaded_at
            .is_none_or(|t| now.since(t) >= self.options.fleet_refresh);
        // Current values and status must be fresh for every pass: re-read the proxy list
        // for each evaluation time (once for all the policies due then), and the ladders
        // only when stale or for a new region pair.
        let read_now = cache.proxies_for != Some(now);
        let proxies = if read_now {
            let read_at = self.clock.now();
            let proxies = self.cloud.list_proxies().await?;
            cache.proxies_for = Some(now);
            cache.proxies_read_at = read_at;
            proxies
        } else {
            std::mem::take(&mut cache.proxies)
        };
        if stale {
            cache.ladders.clear();
            cache.loaded_at = Some(now);
        }
        let selected: Vec<ProxyState> = proxies
            .iter()
            .filter(|p| policy.selector.matches(&p.id, &p.tags))
            .cloned()
            .collect();
        for p in &selected {
            let key = (p.access_region.clone(), p.real_server_region.clone());
            if let std::collections::hash_map::Entry::Vacant(slot) = cache.ladders.entry(key) {
                let (access, dest) = slot.key().clone();
                match self.cloud.ladder(&access, &dest).await {
                    Ok(l) => {
                        slot.insert(l);
                    }
                    Err(e) => {
                        warn!(proxy = %p.id, access = %access, dest = %dest, error = %e, "cannot read allowed values")
                    }
                }
            }
        }
        cache.proxies = proxies;
        if read_now {
            let mut by_status: HashMap<&str, i64> = HashMap::new();
            for p in &cache.proxies {
                *by_status.entry(p.status.as_str()).or_default() += 1;
            }
            self.stats.proxies.reset();
            for (s, n) in by_status {
                self.stats.proxies.with_label_values(&[s]).set(n);
            }
        }
        Ok(View {
            proxies: selected,
            ladders: cache.ladders.clone(),
            read_at: cache.proxies_read_at,
        })
    }

    /// Logs a pass's records, flushed, and returns their ids in order. A hold that repeats
    /// the proxy's previous record is counted on it (`repeats`, `last_time`) instead of
    /// stored again: a steady fleet writes one record per proxy per hour, not per pass.
    fn log_pass(&self, records: Vec<DecisionRecord>) -> Result<Vec<String>, StoreError> {
        let mut last = self.last_holds.lock().expect("lock");
        let mut ids: Vec<Option<String>> = vec![None; records.len()];
        let (mut fresh, mut at, mut folded) = (Vec::new(), Vec::new(), Vec::new());
        for (i, rec) in records.into_iter().enumerate() {
            let key = (rec.policy.clone(), rec.proxy_id.clone());
            match last.get_mut(&key) {
                Some(prev) if rec.repeats_hold(prev) => {
                    prev.repeats += 1;
                    prev.last_time = Some(rec.time);
                    ids[i] = Some(prev.id.clone());
                    folded.push(key);
                }
                _ => {
                    if let Some(prev) = last.remove(&key)
                        && prev.repeats > 0
                        && let Some(sh) = &self.shared
                        && let Err(e) = sh.store.stage_record(&prev)
                    {
                        // Its last count reaches the other daemons with it.
                        error!(id = %prev.id, error = %e, "cannot stage a record for the shared log");
                    }
                    at.push(i);
                    fresh.push(rec);
                }
            }
        }
        if let Some(sh) = &self.shared {
            let me = sh.store.leadership().instance();
            for r in &mut fresh {
                r.instance = Some(me.to_string());
            }
        }
        let stored = self
            .journal
            .rewrite_held(folded.iter().map(|k| &last[k]))
            .and_then(|()| self.journal.append_batch(&fresh));
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                // What was counted in memory may not be on disk: start afresh.
                last.clear();
                return Err(e);
            }
        };
        for ((i, mut rec), id) in at.into_iter().zip(fresh).zip(stored) {
            ids[i] = Some(id.clone());
            if let Some(sh) = &self.shared {
                rec.id = id.clone();
                sh.store.stage_record(&rec)?;
            }
            if matches!(rec.outcome, Outcome::Held | Outcome::Skipped) && rec.note.is_none() {
                rec.id = id;
                last.insert((rec.policy.clone(), rec.proxy_id.clone()), rec);
            }
        }
        Ok(ids
            .into_iter()
            .map(|id| id.expect("every record has an id"))
            .collect())
    }

    /// One pass of `policy` at `now`: read → decide → log → act, each a step that returns
    /// what the next one needs. Changes are sent on tasks whose handles are pushed to
    /// `calls`, so the caller decides whether to wait for them (dropping a handle does not
    /// cancel the call).
    pub async fn run_pass(
        self: &Arc<Self>,
        policy: &Arc<Policy>,
        now: Timestamp,
        calls: &mut Vec<JoinHandle<()>>,
    ) -> PassReport {
        let started = std::time::Instant::now();
        let mut report = PassReport {
            policy: policy.name.clone(),
            time: now,
            ..PassReport::default()
        };
        self.sync_control(now).await;
        match self.take_over().await {
            Ok(true) => {}
            Ok(false) => {
                debug!(policy = %policy.name, "follower: not evaluated");
                report.follower = true;
                return report;
            }
            Err(e) => {
                error!(policy = %policy.name, error = %e, "cannot load the shared state; nothing decided this pass");
                report.error = Some(format!("shared state: {e}"));
                return report;
            }
        }
        self.retry_reconciliation(now).await;
        let (view, readings) = match self.read(policy, now, &mut report).await {
            Ok(r) => r,
            Err(e) => {
                error!(policy = %policy.name, error = %e, "cannot read the fleet; nothing decided this pass");
                report.error = Some(e.to_string());
                return report;
            }
        };
        self.warm_predictive(policy, &view, now).await;
        let (decided, records) = self.decide_all(policy, &view, &readings, now, &mut report);
        // The whole pass is logged in one batch (one flush) before anything is sent:
        // durable before acting, without a disk sync per proxy.
        let ids = match self.log_pass(records) {
            Ok(ids) => ids,
            Err(e) => {
                // If the log cannot take the pass, nothing is sent and no state moves.
                error!(policy = %policy.name, error = %e, "cannot log the pass's decisions; not acting on them");
                report.error = Some(format!("decision log: {e}"));
                return report;
            }
        };
        let changes = self.carry_on(policy, ids, decided, &mut report);
        let changes = self.recheck_if_stale(changes, &view, &mut report).await;
        // Under [ha] the pass's intents and states reach etcd (fenced) before any send.
        if let Err(e) = self.flush_shared().await {
            error!(policy = %policy.name, error = %e, changes = changes.len(), "cannot write the shared state; not acting on this pass");
            report.error = Some(format!("shared state: {e}"));
            self.not_shared(changes, &e);
            return report;
        }
        report.changes = changes.len();
        self.send(policy, changes, calls);
        self.stats
            .pass_duration
            .with_label_values(&[policy.name.as_str()])
            .observe(started.elapsed().as_secs_f64());
        report
    }

    /// The proxies the policy selects (fresh values), their ladders, and their signals.
    async fn read(
        &self,
        policy: &Policy,
        now: Timestamp,
        report: &mut PassReport,
    ) -> Result<(View, PolicyReadings), PortError> {
        let view = self.fleet_for(policy, now).await?;
        let ids: Vec<String> = view.proxies.iter().map(|p| p.id.clone()).collect();
        let readings = self.metrics.observe(policy, &ids, now).await;
        // (The metrics adapter logs each failure with its details.)
        report.query_errors = readings.query_errors.len();
        for (kind, _) in &readings.query_errors {
            self.stats
                .query_errors
                .with_label_values(&[policy.name.as_str(), kind.as_str()])
                .inc();
        }
        Ok((view, readings))
    }

    /// Under `[ha]`, before each pass (leader or follower): takes the shared pauses
    /// (`prefix/control`, the truth) and applies the resumes another daemon took, so that
    /// an operator may talk to any daemon. A failed read keeps what this daemon has.
    async fn sync_control(&self, now: Timestamp) {
        let Some(sh) = &self.shared else {
            return;
        };
        let shared = match sh.store.control().await {
            // Never written (the first daemons with shared pauses): this daemon's own
            // pauses become the shared ones, rather than being dropped.
            Ok((_, 0)) if !self.pauses.lock().expect("lock").is_empty() => {
                let local = self.pauses.lock().expect("lock").clone();
                let merged = sh
                    .store
                    .update_control(|c| {
                        for p in &local {
                            if !c.pauses.contains(p) {
                                c.pauses.push(p.clone());
                            }
                        }
                    })
                    .await;
                match merged {
                    Ok(c) => c,
                    Err(e) => {
                        warn!(error = %e, "cannot share this daemon's pauses; keeping them");
                        return;
                    }
                }
            }
            Ok((c, _)) => c,
            Err(e) => {
                warn!(error = %e, "cannot read the shared pauses; keeping this daemon's");
                return;
            }
        };
        // Expired pauses stay in etcd until the next change; they are not taken.
        let pauses: Vec<core::Pause> = shared
            .pauses
            .iter()
            .filter(|p| p.until.is_none_or(|u| now < u))
            .cloned()
            .collect();
        let local = self.pauses.lock().expect("lock").clone();
        let same = local.len() == pauses.len() && local.iter().all(|p| pauses.contains(p));
        if !same {
            for p in local.iter().filter(|p| !pauses.contains(p)) {
                if let Err(e) = self.journal.remove_pause(p) {
                    warn!(error = %e, "cannot forget a pause in the local log");
                }
            }
            for p in pauses.iter().filter(|p| !local.contains(p)) {
                if let Err(e) = self.journal.save_pause(p) {
                    warn!(error = %e, "cannot keep a shared pause in the local log");
                }
            }
            info!(pauses = pauses.len(), "pauses taken from the shared state");
            *self.pauses.lock().expect("lock") = pauses;
        }
        let first = !self
            .control_synced
            .swap(true, std::sync::atomic::Ordering::SeqCst);
        let mut applied = self.applied_resumes.lock().expect("lock");
        for r in &shared.resumes {
            if applied.insert(r.clone()) && !first {
                match self.end_holds(&r.scope, now) {
                    Ok(n) => {
                        info!(scope = %r.scope, instance = %r.instance, ended = n, "a resume taken by another daemon applied")
                    }
                    Err(e) => warn!(scope = %r.scope, error = %e, "cannot apply a shared resume"),
                }
            }
        }
        applied.retain(|r| shared.resumes.contains(r));
    }

    /// `[predictive]`: warms the seasonal memory of the proxies this process meets for the
    /// first time and whose memory is empty (a restart keeps it in the controller state)
    /// from one bounded range query of hourly highs per signal. A failed query is logged
    /// and not retried: the memory then learns online, as it would have anyway.
    async fn warm_predictive(&self, policy: &Policy, view: &View, now: Timestamp) {
        if policy.predictive.mode == crate::policy::PredictiveMode::Off {
            return;
        }
        let cold: Vec<String> = {
            let mut warmed = self.warmed.lock().expect("lock");
            view.proxies
                .iter()
                .filter(|p| warmed.insert((policy.name.clone(), p.id.clone())))
                .filter(|p| {
                    let st = self.state_of(&(policy.name.clone(), p.id.clone()));
                    st.bandwidth.season.is_empty() && st.concurrent.season.is_empty()
                })
                .map(|p| p.id.clone())
                .collect()
        };
        if cold.is_empty() {
            return;
        }
        let history = match self.metrics.hourly_highs(policy, &cold, now).await {
            Ok(h) => h,
            Err(e) => {
                warn!(policy = %policy.name, proxies = cold.len(), error = %e, "cannot read the history to warm the predictive memory; it learns online");
                return;
            }
        };
        let mut hours = 0usize;
        let mut states = self.states.lock().expect("lock");
        for id in &cold {
            let key = (policy.name.clone(), id.clone());
            let mut state = states.get(&key).cloned().unwrap_or_default();
            for dim in [core::Dim::Bandwidth, core::Dim::Concurrent] {
                let Some(cfg) = policy.dimension(dim) else {
                    continue;
                };
                let Some(points) = history.get(&(id.clone(), cfg.signal.clone())) else {
                    continue;
                };
                hours += points.len();
                core::season::warm_up(policy, dim, state.dim_mut(dim), points.iter().copied());
            }
            states.insert(key, state);
        }
        info!(policy = %policy.name, proxies = cold.len(), hours, "predictive memory warmed from history");
    }

    /// Decides every proxy of the view that may be decided now; returns the decisions and
    /// their records, in the same order. No IO but the in-memory maps.
    fn decide_all<'v>(
        &self,
        policy: &Policy,
        view: &'v View,
        readings: &PolicyReadings,
        now: Timestamp,
        report: &mut PassReport,
    ) -> (Vec<Decided<'v>>, Vec<DecisionRecord>) {
        let mode = if self.options.dry_run {
            Mode::DryRun
        } else {
            policy.mode
        };
        let empty = core::Observation::default();
        let mut decided = Vec::with_capacity(view.proxies.len());
        let mut records = Vec::with_capacity(view.proxies.len());
        for proxy in &view.proxies {
            if self.busy.lock().expect("lock").contains(&proxy.id) {
                report.busy += 1;
                debug!(policy = %policy.name, proxy = %proxy.id, "change in flight; not evaluated");
                continue;
            }
            // A live decision for a proxy whose earlier decision may still be in flight
            // could change it twice for one need: wait for reconciliation. (A dry run
            // sends nothing, so it may decide.)
            if mode == Mode::Live && self.unreconciled.lock().expect("lock").contains(&proxy.id) {
                report.unreconciled += 1;
                debug!(policy = %policy.name, proxy = %proxy.id, "a logged decision awaits reconciliation; not evaluated");
                continue;
            }
            let key = (policy.name.clone(), proxy.id.clone());
            let state = self.state_of(&key);
            let ladder = view.ladders.get(&(
                proxy.access_region.clone(),
                proxy.real_server_region.clone(),
            ));
            let obs = readings.per_proxy.get(&proxy.id).unwrap_or(&empty);
            let mut decision = core::decide(policy, proxy, ladder, obs, &state, now);
            // The operators' run-time pauses: the proxy is still evaluated and logged.
            let (paused, why) = core::paused_at(
                &self.pauses.lock().expect("lock"),
                &policy.name,
                &proxy.id,
                now,
            );
            if paused.any() {
                core::apply_pause(&mut decision, &state, paused, why);
            }
            if core::operator::detected(&state.operator, &decision) {
                self.stats
                    .manual_changes
                    .with_label_values(&[policy.name.as_str()])
                    .inc();
                warn!(policy = %policy.name, proxy = %proxy.id, "the proxy was changed outside the autoscaler");
            }
            report.evaluated += 1;
            let (outcome, note) = self.outcome_of(&decision, proxy, mode);
            records.push(DecisionRecord::from_decision(
                &decision,
                &RecordContext {
                    mode,
                    outcome,
                    proxy,
                    ladder,
                    observation: obs,
                    policy,
                    note: note.as_deref(),
                },
            ));
            decided.push(Decided {
                key,
                decision,
                state,
                proxy,
                outcome,
                mode,
            });
        }
        (decided, records)
    }

    /// What becomes of a decision: sent (planned), logged only (dry run), held, or
    /// skipped (with a note when an earlier rejection blocks it).
    fn outcome_of(
        &self,
        decision: &core::Decision,
        proxy: &ProxyState,
        mode: Mode,
    ) -> (Outcome, Option<String>) {
        match decision.verdict {
            Verdict::Change => {
                let blocked = self.blocked.lock().expect("lock").get(&proxy.id).cloned();
                match blocked {
                    Some(b) if b.snapshot == snapshot(proxy) => (
                        Outcome::Skipped,
                        Some(format!(
                            "not sent: an earlier change was rejected with {} and the proxy has not changed since",
                            b.code
                        )),
                    ),
                    _ => {
                        self.blocked.lock().expect("lock").remove(&proxy.id);
                        let outcome = if mode == Mode::DryRun {
                            Outcome::DryRun
                        } else {
                            Outcome::Planned
                        };
                        (outcome, None)
                    }
                }
            }
            Verdict::Hold | Verdict::Wait => (Outcome::Held, None),
            Verdict::Skip => (Outcome::Skipped, None),
        }
    }

    /// After the log took the pass: counts and logs each decision, carries the state of
    /// everything not sent, and returns the changes to send.
    fn carry_on(
        &self,
        policy: &Policy,
        ids: Vec<String>,
        decided: Vec<Decided<'_>>,
        report: &mut PassReport,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for (id, d) in ids.into_iter().zip(decided) {
            for r in &d.decision.reasons {
                self.stats
                    .decisions
                    .with_label_values(&[policy.name.as_str(), d.outcome.as_str(), r.code.as_str()])
                    .inc();
            }
            if d.decision.verdict == Verdict::Change || tracing::enabled!(tracing::Level::DEBUG) {
                info!(
                    policy = %policy.name, proxy = %d.proxy.id, id = %id, outcome = d.outcome.as_str(),
                    bandwidth = %format!("{}->{}", d.decision.bandwidth_from, d.decision.bandwidth_to),
                    concurrent = %format!("{}->{}", d.decision.concurrent_from, d.decision.concurrent_to),
                    reasons = %d.decision.reason_codes().join(","),
                    "decision"
                );
            }
            match d.outcome {
                Outcome::Planned => changes.push(Change {
                    id,
                    key: d.key,
                    decision: d.decision,
                    prev_state: d.state,
                    proxy: d.proxy.clone(),
                    billing_type: policy.billing_type,
                }),
                outcome => {
                    if outcome == Outcome::DryRun {
                        report.dry_run_changes += 1;
                    }
                    // Held, dry-run and skipped decisions carry their state on (a dry-run
                    // change counts as made, so its cooldowns show what live mode would
                    // do); a change skipped for an earlier rejection did not happen.
                    let mut next =
                        if outcome == Outcome::Skipped && d.decision.verdict == Verdict::Change {
                            d.state
                        } else {
                            d.decision.next_state
                        };
                    // The proxy stays where it was: that is what the next pass must see
                    // (else a dry-run or skipped change would look like an operator's).
                    if d.decision.verdict == Verdict::Change {
                        next.operator.last_known =
                            Some((d.decision.bandwidth_from, d.decision.concurrent_from));
                    }
                    self.keep_state(&d.key, next, d.mode);
                }
            }
        }
        changes
    }

    /// When the proxy listing is older than `max_view_age`, reads the changing proxies'
    /// current values again and drops (closes in the log, state unchanged) every change
    /// whose proxy is no longer at the values it was decided from: a decision made on a
    /// stale view could exceed `max_steps` against the real current value.
    async fn recheck_if_stale(
        &self,
        changes: Vec<Change>,
        view: &View,
        report: &mut PassReport,
    ) -> Vec<Change> {
        let age = self.clock.now().since(view.read_at);
        if changes.is_empty() || age <= self.options.max_view_age {
            return changes;
        }
        let ids: Vec<String> = changes.iter().map(|c| c.proxy.id.clone()).collect();
        let current: Result<HashMap<String, ProxyState>, PortError> = self
            .cloud
            .proxies(&ids)
            .await
            .map(|ps| ps.into_iter().map(|p| (p.id.clone(), p)).collect());
        let mut keep = Vec::with_capacity(changes.len());
        for c in changes {
            let why = match &current {
                Err(e) => Some((
                    "Stale.RecheckFailed",
                    format!(
                        "the proxy list was {:.0} s old and re-reading the proxy failed ({e}); not sent, a new decision will be made",
                        age.as_secs_f64()
                    ),
                )),
                Ok(now) => match now.get(&c.proxy.id) {
                    Some(p)
                        if p.status == ProxyStatus::Running
                            && (p.bandwidth, p.concurrent)
                                == (c.decision.bandwidth_from, c.decision.concurrent_from) =>
                    {
                        None
                    }
                    Some(p) => Some((
                        "Stale.ProxyMoved",
                        format!(
                            "decided from {}/{} on a proxy list {:.0} s old; the proxy is now {}/{} ({}): not sent, a new decision will be made",
                            c.decision.bandwidth_from,
                            c.decision.concurrent_from,
                            age.as_secs_f64(),
                            p.bandwidth,
                            p.concurrent,
                            p.status.as_str()
                        ),
                    )),
                    None => Some((
                        "Stale.ProxyMoved",
                        "the proxy was not found when its stale view was re-checked; not sent"
                            .to_string(),
                    )),
                },
            };
            match why {
                None => keep.push(c),
                Some((code, message)) => {
                    warn!(proxy = %c.proxy.id, id = %c.id, code, "not sent: {message}");
                    report.stale += 1;
                    let update = OutcomeUpdate {
                        error_code: Some(code.into()),
                        error_message: Some(message),
                        ..OutcomeUpdate::default()
                    };
                    if let Err(e) = self.answer(&c.id, Outcome::Failed, &update) {
                        error!(id = %c.id, error = %e, "cannot record the outcome");
                    }
                    let mut state = c.prev_state;
                    // Where the proxy is now is not known to be ours.
                    state.operator.last_known = None;
                    self.keep_state(&c.key, state, Mode::Live);
                }
            }
        }
        keep
    }

    /// Sends the changes, scale-ups first (they reach the budget before scale-downs).
    fn send(
        self: &Arc<Self>,
        policy: &Policy,
        mut changes: Vec<Change>,
        calls: &mut Vec<JoinHandle<()>>,
    ) {
        changes.sort_by_key(|c| c.decision.direction != Some(Direction::Up));
        for c in changes {
            self.busy.lock().expect("lock").insert(c.proxy.id.clone());
            let call = ModifyCall {
                proxy_id: c.proxy.id.clone(),
                bandwidth: Some(c.decision.bandwidth_to),
                concurrent: Some(c.decision.concurrent_to),
                client_token: c.id.clone(),
                billing_type: c.billing_type,
                urgent: c.decision.direction == Some(Direction::Up),
            };
            let engine = Arc::clone(self);
            debug!(policy = %policy.name, proxy = %c.proxy.id, id = %c.id, "sending");
            calls.push(tokio::spawn(async move {
                // Under [ha], leadership is checked right before the call (and again by
                // the client before each attempt, after the budget's wait).
                let result = if engine.may_act() {
                    engine.cloud.modify(call).await
                } else {
                    not_leader_result()
                };
                engine
                    .settle(
                        &c.key,
                        &c.id,
                        &c.proxy,
                        result,
                        c.decision.next_state,
                        c.prev_state,
                    )
                    .await;
            }));
        }
    }

    /// The controller state of (policy, proxy), or a fresh one.
    fn state_of(&self, key: &(String, String)) -> ControllerState {
        self.states
            .lock()
            .expect("lock")
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// Keeps a proxy's next controller state: in memory always, in the store only for
    /// live decisions (a `--dry-run` engine decides in dry-run mode), so a dry run never
    /// changes what the live daemon does next.
    fn keep_state(&self, key: &(String, String), mut state: ControllerState, mode: Mode) {
        self.honour_resumes(key, &mut state);
        if mode == Mode::Live
            && let Err(e) = self.journal.save_state(&key.0, &key.1, &state)
        {
            error!(policy = %key.0, proxy = %key.1, error = %e, "cannot persist controller state");
        }
        if mode == Mode::Live
            && let Some(sh) = &self.shared
            && let Err(e) = sh.store.stage_state(&key.0, &key.1, &state)
        {
            error!(policy = %key.0, proxy = %key.1, error = %e, "cannot stage controller state");
        }
        self.states.lock().expect("lock").insert(key.clone(), state);
    }

    /// Ends a manual hold in `state` that a `resume` ended meanwhile: the state was read
    /// before the resume by a pass still in flight. (The same hold: the same proxy and the
    /// same observed change; a hold observed afterwards stays.)
    fn honour_resumes(&self, key: &(String, String), state: &mut ControllerState) {
        if state.operator.manual_hold_until.is_none() {
            return;
        }
        let seen = state.operator.manual_change.map(|c| c.at);
        let ended = self
            .ended_holds
            .lock()
            .expect("lock")
            .iter()
            .any(|(k, at, _)| k == key && *at == seen);
        if ended {
            core::operator::end_hold(&mut state.operator);
        }
    }

    /// Records the answer to a sent decision, then (if applied) watches the proxy until it
    /// leaves ADJUSTING.
    async fn settle(
        &self,
        key: &(String, String),
        id: &str,
        proxy: &ProxyState,
        result: ModifyResult,
        next_state: ControllerState,
        prev_state: ControllerState,
    ) {
        match &result {
            ModifyResult::Applied {
                request_id,
                attempts,
                confirmed_duplicate,
            } => {
                info!(proxy = %proxy.id, id, request_id = %request_id, attempts, confirmed_duplicate, "change applied");
            }
            ModifyResult::Rejected { code, message, .. } => {
                warn!(proxy = %proxy.id, id, code = %code, message = %message, "change rejected; proxy skipped until it changes");
                self.blocked.lock().expect("lock").insert(
                    proxy.id.clone(),
                    Blocked {
                        code: code.clone(),
                        snapshot: snapshot(proxy),
                    },
                );
            }
            ModifyResult::Failed {
                code,
                message,
                attempts,
            } => {
                warn!(proxy = %proxy.id, id, code = ?code, message = %message, attempts, "change failed after retries");
            }
        }
        if super::adapters::outcome_unknown(&result) {
            // Neither applied nor refused as far as anyone can tell: the decision stays
            // pending, the proxy waits, and reconciliation (retried before the next pass)
            // confirms it or re-sends it under the same ClientToken.
            warn!(proxy = %proxy.id, id, "the outcome is unknown; the decision stays pending until reconciliation settles it");
            self.stats
                .modify_calls
                .with_label_values(&["unknown"])
                .inc();
            self.unreconciled
                .lock()
                .expect("lock")
                .insert(proxy.id.clone());
            self.needs_reconcile
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let mut state = prev_state;
            // Applied or not, unknown: the next pass takes what it sees as known.
            state.operator.last_known = None;
            self.keep_state(key, state, Mode::Live);
            if let Err(e) = self.flush_shared().await {
                debug!(id, error = %e, "state not shared");
            }
            self.busy.lock().expect("lock").remove(&proxy.id);
            return;
        }
        let (outcome, update) = outcome_update(&result);
        let label = match &result {
            ModifyResult::Applied { .. } => "applied".to_string(),
            ModifyResult::Rejected { code, .. } => format!("rejected:{code}"),
            ModifyResult::Failed { .. } => "failed".to_string(),
        };
        self.stats
            .modify_calls
            .with_label_values(&[label.as_str()])
            .inc();
        if let Err(e) = self.answer(id, outcome, &update) {
            error!(id, error = %e, "cannot record the outcome");
        }
        // A change that did not happen starts no cooldown.
        let state = if outcome == Outcome::Applied {
            next_state
        } else {
            let mut s = next_state;
            s.bandwidth.last_up = prev_state.bandwidth.last_up;
            s.bandwidth.last_down = prev_state.bandwidth.last_down;
            s.concurrent.last_up = prev_state.concurrent.last_up;
            s.concurrent.last_down = prev_state.concurrent.last_down;
            s.operator.last_known = Some((proxy.bandwidth, proxy.concurrent));
            s
        };
        self.keep_state(key, state, Mode::Live);
        if let Err(e) = self.flush_shared().await {
            // The intent stays pending in etcd: the next leader confirms it (same token).
            warn!(id, error = %e, "the answer is not in the shared state");
        }
        if outcome == Outcome::Applied {
            if self.options.watch_completion {
                self.watch(id, &proxy.id).await;
            } else {
                self.unwatched
                    .lock()
                    .expect("lock")
                    .push((id.to_string(), proxy.id.clone()));
            }
        }
        self.busy.lock().expect("lock").remove(&proxy.id);
    }

    /// Polls the proxies of the applied changes that were not watched (one status read per
    /// 100 proxies each `watch_interval`) until they are RUNNING again or `timeout`
    /// passes; logs each completion. Returns (complete, still adjusting).
    pub async fn await_completion(&self, timeout: Duration) -> (usize, usize) {
        let mut left = std::mem::take(&mut *self.unwatched.lock().expect("lock"));
        let started = tokio::time::Instant::now();
        let mut done = 0;
        while !left.is_empty() && started.elapsed() < timeout {
            tokio::time::sleep(self.options.watch_interval).await;
            let mut running = HashSet::new();
            for chunk in left.chunks(100) {
                let ids: Vec<String> = chunk.iter().map(|(_, p)| p.clone()).collect();
                match self.cloud.statuses(&ids).await {
                    Ok(s) => running.extend(
                        s.into_iter()
                            .filter(|(_, st)| *st == ProxyStatus::Running)
                            .map(|(p, _)| p),
                    ),
                    Err(e) => debug!(error = %e, "status poll failed"),
                }
            }
            let at = self.clock.now();
            left.retain(|(id, proxy)| {
                if !running.contains(proxy) {
                    return true;
                }
                self.complete(id, at);
                info!(proxy = %proxy, id, "change complete: proxy RUNNING");
                done += 1;
                false
            });
        }
        if let Err(e) = self.flush_shared().await {
            debug!(error = %e, "completions not shared");
        }
        (done, left.len())
    }

    /// Polls the proxy until it is RUNNING again (bounded), then logs completion.
    async fn watch(&self, id: &str, proxy_id: &str) {
        let started = tokio::time::Instant::now();
        let ids = [proxy_id.to_string()];
        while started.elapsed() < self.options.watch_timeout {
            tokio::time::sleep(self.options.watch_interval).await;
            match self.cloud.statuses(&ids).await {
                Ok(s) if s.get(proxy_id) == Some(&ProxyStatus::Running) => {
                    let at = self.clock.now();
                    self.complete(id, at);
                    if let Err(e) = self.flush_shared().await {
                        debug!(id, error = %e, "completion not shared");
                    }
                    info!(proxy = proxy_id, id, "change complete: proxy RUNNING");
                    return;
                }
                Ok(_) => {}
                Err(e) => debug!(proxy = proxy_id, error = %e, "status poll failed"),
            }
        }
        warn!(
            proxy = proxy_id,
            id, "proxy still not RUNNING after the watch timeout"
        );
    }

    /// Start-up reconciliation of the decisions logged as planned but never answered (the
    /// process died in between). For each proxy only its newest such decision may be
    /// re-sent, with its own ClientToken (a duplicate means the first attempt took
    /// effect), and only when it is fresh, no newer decision of the proxy was logged, the
    /// same policy still manages the proxy in live mode, and the proxy is at the
    /// decision's target (to confirm) or RUNNING at its from-values. Everything else is
    /// closed without a call (`Reconcile.Superseded`, `Reconcile.Abandoned`). Under
    /// `--dry-run` nothing is sent and nothing closed: the decisions stay pending. Until
    /// this succeeds, live passes leave those proxies alone (see `retry_reconciliation`).
    pub async fn reconcile(
        self: &Arc<Self>,
        now: Timestamp,
    ) -> Result<ReconcileSummary, ReconcileError> {
        let _one = self.reconciling.lock().await;
        let result = self.reconcile_locked(now).await;
        self.needs_reconcile
            .store(result.is_err(), std::sync::atomic::Ordering::SeqCst);
        result
    }

    /// Before a pass: retries a reconciliation that failed (or that new policies may now
    /// settle). Proxies it cannot settle keep waiting.
    async fn retry_reconciliation(self: &Arc<Self>, now: Timestamp) {
        use std::sync::atomic::Ordering;
        if !self.needs_reconcile.load(Ordering::SeqCst) {
            return;
        }
        let _one = self.reconciling.lock().await;
        if !self.needs_reconcile.load(Ordering::SeqCst) {
            return;
        }
        match self.reconcile_locked(now).await {
            Ok(s) => {
                self.needs_reconcile.store(false, Ordering::SeqCst);
                info!(
                    applied = s.applied,
                    failed = s.failed,
                    abandoned = s.abandoned,
                    superseded = s.superseded,
                    kept = s.kept,
                    "reconciliation retried: done"
                );
            }
            Err(e) => {
                warn!(error = %e, waiting = self.unreconciled(), "reconciliation failed again; proxies with decisions logged without an answer are not evaluated until it succeeds");
            }
        }
    }

    async fn reconcile_locked(
        self: &Arc<Self>,
        now: Timestamp,
    ) -> Result<ReconcileSummary, ReconcileError> {
        let pending = match &self.shared {
            None => self.journal.pending()?,
            // Only the leader reconciles; the intents are in etcd.
            Some(_) if !self.may_act() => return Err(ReconcileError::NotLeader),
            Some(sh) => sh.store.pending().await?,
        };
        let mut summary = ReconcileSummary::default();
        if pending.is_empty() {
            self.unreconciled.lock().expect("lock").clear();
            return Ok(summary);
        }
        if self.options.dry_run {
            summary.kept = pending.len();
            info!(
                count = pending.len(),
                "dry run: decisions logged without an answer stay pending; none is sent"
            );
            return Ok(summary);
        }
        info!(
            count = pending.len(),
            "reconciling decisions logged without an outcome"
        );
        let proxies = self.cloud.list_proxies().await?;
        let by_id: HashMap<&str, &ProxyState> =
            proxies.iter().map(|p| (p.id.as_str(), p)).collect();
        let policies = self.policies.lock().expect("lock").clone();
        // Oldest first: the last one of a proxy is its newest.
        let newest: HashMap<&str, &str> = pending
            .iter()
            .map(|p| (p.proxy_id.as_str(), p.id.as_str()))
            .collect();
        let mut still_pending = HashSet::new();
        for p in &pending {
            let plan = if newest[p.proxy_id.as_str()] != p.id {
                Plan::Close(
                    "Reconcile.Superseded",
                    "a newer decision for this proxy was logged; this one is never sent".into(),
                )
            } else {
                self.plan(p, by_id.get(p.proxy_id.as_str()).copied(), &policies, now)?
            };
            let (outcome, update) = match plan {
                Plan::Keep(why) => {
                    info!(id = %p.id, proxy = %p.proxy_id, "left pending: {why}");
                    summary.kept += 1;
                    still_pending.insert(p.proxy_id.clone());
                    continue;
                }
                Plan::Close(code, message) => {
                    if code == "Reconcile.Superseded" {
                        summary.superseded += 1;
                    } else {
                        summary.abandoned += 1;
                    }
                    let update = OutcomeUpdate {
                        error_code: Some(code.into()),
                        error_message: Some(message),
                        ..OutcomeUpdate::default()
                    };
                    (Outcome::Failed, update)
                }
                Plan::Resend => self.resend(p, now, &mut summary).await,
            };
            info!(id = %p.id, proxy = %p.proxy_id, outcome = outcome.as_str(), code = update.error_code.as_deref().unwrap_or(""), "reconciled");
            if self.shared.is_some() {
                self.journal.upsert(p)?;
            }
            self.answer(&p.id, outcome, &update)?;
        }
        self.flush_shared().await?;
        *self.unreconciled.lock().expect("lock") = still_pending;
        Ok(summary)
    }

    /// What to do with a proxy's newest pending decision.
    fn plan(
        &self,
        p: &DecisionRecord,
        current: Option<&ProxyState>,
        policies: &[Arc<Policy>],
        now: Timestamp,
    ) -> Result<Plan, StoreError> {
        let Some(current) = current else {
            return Ok(Plan::abandon("the proxy no longer exists"));
        };
        if now.since(p.time) > self.options.reconcile_max_age {
            return Ok(Plan::abandon(
                "logged too long ago to re-send safely; a new decision will be made",
            ));
        }
        let later = self.journal.list(&LogFilter {
            proxy: Some(p.proxy_id.clone()),
            since: Some(p.time),
            ..LogFilter::default()
        })?;
        // A dry-run decision sent nothing and so supersedes nothing.
        if let Some(newer) = later
            .iter()
            .find(|r| r.id != p.id && r.mode == Mode::Live.as_str())
        {
            return Ok(Plan::Close(
                "Reconcile.Superseded",
                format!(
                    "a newer decision for this proxy was logged ({}, {}); this one is never sent",
                    newer.id,
                    newer.outcome.as_str()
                ),
            ));
        }
        match policies
            .iter()
            .find(|pol| pol.selector.matches(&current.id, &current.tags))
        {
            None => return Ok(Plan::abandon("no running policy manages the proxy now")),
            Some(pol) if pol.name != p.policy => {
                return Ok(Plan::Close(
                    "Reconcile.Abandoned",
                    format!("the proxy is managed by policy {} now", pol.name),
                ));
            }
            Some(pol) if pol.mode == Mode::DryRun => {
                return Ok(Plan::Keep(format!(
                    "policy {} is in dry-run mode, so nothing is sent",
                    pol.name
                )));
            }
            Some(_) => {}
        }
        let values = (current.bandwidth, current.concurrent);
        if values == (p.bandwidth_to, p.concurrent_to) {
            // At the target: the same ClientToken confirms it (DuplicatedRequest) or
            // applies a change that is already in effect.
            return Ok(Plan::Resend);
        }
        if values != (p.bandwidth_from, p.concurrent_from) {
            return Ok(Plan::abandon(
                "the proxy changed since the decision; a new decision will be made",
            ));
        }
        if current.status != ProxyStatus::Running {
            return Ok(Plan::Close(
                "Reconcile.Abandoned",
                format!(
                    "the proxy is {} (not RUNNING); a new decision will be made",
                    current.status.as_str()
                ),
            ));
        }
        Ok(Plan::Resend)
    }

    /// Re-sends a pending decision with its own ClientToken; an applied one stamps the
    /// cooldown it would have stamped had the first attempt been answered.
    async fn resend(
        &self,
        p: &DecisionRecord,
        now: Timestamp,
        summary: &mut ReconcileSummary,
    ) -> (Outcome, OutcomeUpdate) {
        let call = ModifyCall {
            proxy_id: p.proxy_id.clone(),
            bandwidth: Some(p.bandwidth_to),
            concurrent: Some(p.concurrent_to),
            client_token: p.id.clone(),
            billing_type: p.billing_type,
            urgent: p.bandwidth_to > p.bandwidth_from || p.concurrent_to > p.concurrent_from,
        };
        let result = if self.may_act() {
            self.cloud.modify(call).await
        } else {
            not_leader_result()
        };
        let (outcome, update) = outcome_update(&result);
        if let ModifyResult::Applied {
            confirmed_duplicate,
            ..
        } = result
        {
            summary.applied += 1;
            // A duplicate took effect when first sent; a fresh apply takes effect now.
            let at = if confirmed_duplicate { p.time } else { now };
            self.stamp_cooldown(p, at);
        } else {
            summary.failed += 1;
        }
        (outcome, update)
    }

    fn stamp_cooldown(&self, p: &DecisionRecord, at: Timestamp) {
        let key = (p.policy.clone(), p.proxy_id.clone());
        let mut state = self.state_of(&key);
        state.operator.last_known = Some((p.bandwidth_to, p.concurrent_to));
        for (dim, from, to) in [
            (&mut state.bandwidth, p.bandwidth_from, p.bandwidth_to),
            (&mut state.concurrent, p.concurrent_from, p.concurrent_to),
        ] {
            if to > from {
                dim.last_up = Some(at);
            } else if to < from {
                dim.last_down = Some(at);
            }
        }
        self.keep_state(&key, state, Mode::Live);
    }
}

/// What start-up reconciliation did with the decisions logged without an answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileSummary {
    /// Re-sent with their own ClientToken and applied (or confirmed as applied).
    pub applied: usize,
    /// Re-sent and rejected, or failed after retries.
    pub failed: usize,
    /// Closed without a call: too old, the proxy moved or is gone, not managed now.
    pub abandoned: usize,
    /// Closed without a call: a newer decision for the same proxy was logged.
    pub superseded: usize,
    /// Left pending, nothing sent: a dry run, or the managing policy is in dry-run mode.
    pub kept: usize,
}

impl ReconcileSummary {
    /// Decisions that got an outcome.
    pub fn settled(&self) -> usize {
        self.applied + self.failed + self.abandoned + self.superseded
    }
}

enum Plan {
    Resend,
    Close(&'static str, String),
    Keep(String),
}

impl Plan {
    fn abandon(why: &str) -> Plan {
        Plan::Close("Reconcile.Abandoned", why.to_string())
    }
}

/// What a send that leadership stopped looks like to `settle`: an unknown outcome, so the
/// intent stays pending for the leader's reconciliation (same ClientToken).
fn not_leader_result() -> ModifyResult {
    ModifyResult::Failed {
        code: Some(crate::cloud::error::OUTCOME_UNKNOWN.to_string()),
        message:
            "not sent: this daemon is no longer the leader; the leader reconciles the decision"
                .into(),
        attempts: 0,
    }
}

/// The log's view of a call's answer.
fn outcome_update(result: &ModifyResult) -> (Outcome, OutcomeUpdate) {
    match result.clone() {
        ModifyResult::Applied {
            request_id,
            attempts,
            ..
        } => (
            Outcome::Applied,
            OutcomeUpdate {
                request_id: Some(request_id),
                attempts,
                ..OutcomeUpdate::default()
            },
        ),
        ModifyResult::Rejected {
            code,
            message,
            request_id,
            attempts,
        } => (
            Outcome::Failed,
            OutcomeUpdate {
                request_id,
                error_code: Some(code),
                error_message: Some(message),
                attempts,
            },
        ),
        ModifyResult::Failed {
            code,
            message,
            attempts,
        } => (
            Outcome::Failed,
            OutcomeUpdate {
                request_id: None,
                error_code: code,
                error_message: Some(message),
                attempts,
            },
        ),
    }
}

/// Why start-up reconciliation could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cloud(#[from] PortError),
    #[error(transparent)]
    Shared(#[from] crate::ha::SharedError),
    #[error("not the leader: the leader reconciles")]
    NotLeader,
}

impl<C: Cloud, M: Metrics> Engine<C, M> {
    /// Forgets the pauses whose time is over (in memory and in the log).
    fn drop_expired_pauses(&self, now: Timestamp) {
        let mut pauses = self.pauses.lock().expect("lock");
        let (keep, gone): (Vec<_>, Vec<_>) = pauses.drain(..).partition(|p| p.active(now));
        *pauses = keep;
        for p in gone {
            info!(scope = %p.scope, direction = core::pause::direction_name(p.direction), "pause expired");
            if let Err(e) = self.journal.remove_pause(&p) {
                warn!(error = %e, "cannot forget an expired pause");
            }
        }
    }

    /// Sets `gaap_autoscaler_paused` from the pauses in force at `now` and the policy
    /// files' own pauses.
    pub fn refresh_paused_metric(&self, now: Timestamp) {
        self.drop_expired_pauses(now);
        let gauge = &self.stats.paused;
        gauge.reset();
        for p in self.pauses.lock().expect("lock").iter() {
            let dir = core::pause::direction_name(p.direction);
            match &p.scope {
                core::Scope::Policy(name) => gauge.with_label_values(&[name.as_str(), "", dir]),
                core::Scope::Proxy(id) => {
                    let policy = self
                        .states
                        .lock()
                        .expect("lock")
                        .keys()
                        .find(|k| &k.1 == id)
                        .map(|k| k.0.clone())
                        .unwrap_or_default();
                    gauge.with_label_values(&[policy.as_str(), id.as_str(), dir])
                }
            }
            .set(1);
        }
        for pol in self.policies.lock().expect("lock").iter() {
            for d in pol.paused.directions() {
                gauge
                    .with_label_values(&[pol.name.as_str(), "", core::pause::direction_name(d)])
                    .set(1);
            }
        }
    }

    fn control_status(&self, now: Timestamp) -> super::control::ControlStatus {
        use super::control::{ControlStatus, HoldStatus, StaticPause};
        self.refresh_paused_metric(now);
        let pauses = self.pauses.lock().expect("lock").clone();
        let static_pauses = self
            .policies
            .lock()
            .expect("lock")
            .iter()
            .filter(|p| p.paused.any())
            .map(|p| StaticPause {
                policy: p.name.clone(),
                directions: p.paused,
            })
            .collect();
        let mut manual_holds: Vec<HoldStatus> = self
            .states
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, st)| core::operator::held(&st.operator, now))
            .map(|((policy, proxy), st)| HoldStatus {
                policy: policy.clone(),
                proxy: proxy.clone(),
                until: st
                    .operator
                    .manual_hold_until
                    .filter(|&u| u != core::operator::FOREVER),
                change: st.operator.manual_change,
            })
            .collect();
        manual_holds.sort_by(|a, b| (&a.policy, &a.proxy).cmp(&(&b.policy, &b.proxy)));
        ControlStatus {
            now,
            pauses,
            static_pauses,
            manual_holds,
            resumed: 0,
        }
    }
}

fn scope_of(policy: &str, proxy: Option<&str>) -> core::Scope {
    match proxy {
        Some(id) => core::Scope::Proxy(id.to_string()),
        None => core::Scope::Policy(policy.to_string()),
    }
}

impl<C: Cloud, M: Metrics> Engine<C, M> {
    /// `pause` on this daemon: validated, kept in the log and in memory. Returns the
    /// pauses made (one per direction).
    fn pause_here(
        &self,
        req: super::control::PauseRequest,
    ) -> Result<Vec<core::Pause>, super::control::ControlError> {
        use super::control::ControlError;
        let now = self.clock.now();
        if !self
            .policies
            .lock()
            .expect("lock")
            .iter()
            .any(|p| p.name == req.policy)
        {
            return Err(ControlError::NotFound(format!(
                "no running policy is named `{}`",
                req.policy
            )));
        }
        let dirs =
            core::pause::parse_directions(&req.direction).map_err(ControlError::BadRequest)?;
        let until = match req.for_.as_deref() {
            None => None,
            Some(text) => {
                let d = crate::time::parse_duration(text)
                    .map_err(|e| ControlError::BadRequest(format!("--for: {e}")))?;
                if d.is_zero() {
                    return Err(ControlError::BadRequest(
                        "--for must be longer than 0".into(),
                    ));
                }
                Some(now + d)
            }
        };
        if req.reason.chars().count() > 500 {
            return Err(ControlError::BadRequest(
                "the reason is longer than 500 characters".into(),
            ));
        }
        let scope = scope_of(&req.policy, req.proxy.as_deref());
        let by = if req.by.trim().is_empty() {
            "unknown".to_string()
        } else {
            req.by.clone()
        };
        let mut made = Vec::new();
        for direction in dirs.directions() {
            let pause = core::Pause {
                scope: scope.clone(),
                direction,
                since: now,
                until,
                reason: req.reason.clone(),
                by: by.clone(),
            };
            self.journal.save_pause(&pause)?;
            info!(scope = %pause.scope, direction = core::pause::direction_name(direction), by = %pause.by, reason = %pause.reason, until = ?pause.until, "paused");
            let mut pauses = self.pauses.lock().expect("lock");
            pauses.retain(|p| !(p.scope == pause.scope && p.direction == direction));
            pauses.push(pause.clone());
            made.push(pause);
        }
        Ok(made)
    }

    /// `resume` on this daemon: the pauses it covers are forgotten, the manual holds it
    /// covers end. Returns how many of both.
    fn resume_here(
        &self,
        scope: &core::Scope,
        dirs: core::Paused,
        by: &str,
        now: Timestamp,
    ) -> Result<usize, super::control::ControlError> {
        let scope = scope.clone();
        let mut resumed = 0;
        let gone: Vec<core::Pause> = {
            let mut pauses = self.pauses.lock().expect("lock");
            let (gone, keep): (Vec<_>, Vec<_>) = pauses
                .drain(..)
                .partition(|p| p.scope == scope && dirs.covers(p.direction));
            *pauses = keep;
            gone
        };
        for p in &gone {
            self.journal.remove_pause(p)?;
            resumed += 1;
        }
        resumed += self.end_holds(&scope, now)?;
        self.journal.flush()?;
        info!(scope = %scope, by = %by, resumed, "resumed");
        Ok(resumed)
    }

    /// Ends the manual holds of `scope` (`resume`; `manual_hold = "forever"` lasts until
    /// this). Returns how many.
    fn end_holds(
        &self,
        scope: &core::Scope,
        now: Timestamp,
    ) -> Result<usize, super::control::ControlError> {
        let mut resumed = 0;
        let mut ended = Vec::new();
        {
            let mut states = self.states.lock().expect("lock");
            for ((policy, proxy), st) in states.iter_mut() {
                let hit = match scope {
                    core::Scope::Policy(name) => policy == name,
                    core::Scope::Proxy(id) => proxy == id,
                };
                let seen = st.operator.manual_change.map(|c| c.at);
                if hit && core::operator::end_hold(&mut st.operator) {
                    // Remembered, so that a pass in flight does not bring it back.
                    let mut recent = self.ended_holds.lock().expect("lock");
                    let hour_ago = now - std::time::Duration::from_secs(3600);
                    recent.retain(|(_, _, at)| *at >= hour_ago);
                    recent.push(((policy.clone(), proxy.clone()), seen, now));
                    ended.push(((policy.clone(), proxy.clone()), st.clone()));
                }
            }
        }
        let live: HashSet<String> = self
            .policies
            .lock()
            .expect("lock")
            .iter()
            .filter(|p| p.mode == Mode::Live && !self.options.dry_run)
            .map(|p| p.name.clone())
            .collect();
        for (key, st) in ended {
            // A dry run stores no controller state (the hold ends in memory only).
            if live.contains(&key.0) {
                self.journal.save_state(&key.0, &key.1, &st)?;
                // Under [ha] the leader's next fenced write carries it to etcd, so a
                // new leader does not bring the hold back (a follower's stage is
                // discarded when it takes over: its states are reloaded from etcd).
                if let Some(sh) = &self.shared {
                    sh.store.stage_state(&key.0, &key.1, &st)?;
                }
            }
            resumed += 1;
        }
        Ok(resumed)
    }
}

impl<C: Cloud, M: Metrics> super::control::ControlPort for Engine<C, M> {
    fn pause(
        &self,
        req: super::control::PauseRequest,
    ) -> BoxFuture<'_, Result<super::control::ControlStatus, super::control::ControlError>> {
        Box::pin(async move {
            let made = self.pause_here(req)?;
            // Under [ha], for every daemon (whichever leads now or later).
            if let Some(sh) = &self.shared {
                sh.store
                    .update_control(|c| {
                        for p in &made {
                            c.pauses
                                .retain(|q| !(q.scope == p.scope && q.direction == p.direction));
                            c.pauses.push(p.clone());
                        }
                    })
                    .await
                    .map_err(|e| super::control::ControlError::Shared(e.to_string()))?;
            }
            Ok(self.control_status(self.clock.now()))
        })
    }

    fn resume(
        &self,
        req: super::control::ResumeRequest,
    ) -> BoxFuture<'_, Result<super::control::ControlStatus, super::control::ControlError>> {
        Box::pin(async move {
            let now = self.clock.now();
            let dirs = core::pause::parse_directions(req.direction.as_deref().unwrap_or("both"))
                .map_err(super::control::ControlError::BadRequest)?;
            let scope = scope_of(&req.policy, req.proxy.as_deref());
            let resumed = self.resume_here(&scope, dirs, &req.by, now)?;
            if let Some(sh) = &self.shared {
                let mark = SharedResume {
                    scope: scope.clone(),
                    at: now,
                    instance: sh.store.leadership().instance().to_string(),
                };
                // Applied here already: the sync does not apply it again.
                self.applied_resumes
                    .lock()
                    .expect("lock")
                    .insert(mark.clone());
                sh.store
                    .update_control(|c| {
                        c.pauses
                            .retain(|p| !(p.scope == scope && dirs.covers(p.direction)));
                        c.resumes.retain(|r| r.at + RESUME_TTL > now);
                        c.resumes.push(mark.clone());
                    })
                    .await
                    .map_err(|e| super::control::ControlError::Shared(e.to_string()))?;
            }
            let mut status = self.control_status(now);
            status.resumed = resumed;
            Ok(status)
        })
    }

    fn status(&self) -> super::control::ControlStatus {
        self.control_status(self.clock.now())
    }
}
