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

use super::ports::{Cloud, Metrics, ModifyCall, ModifyResult, PortError};
use super::schedule::Clock;
use super::stats::Stats;
use crate::core::{self, ControllerState, Direction, Ladder, ProxyState, ProxyStatus, Verdict};
use crate::policy::{Mode, Policy};
use crate::store::{
    DecisionLog, DecisionRecord, Outcome, OutcomeUpdate, RecordContext, StoreError,
};
use crate::time::Timestamp;

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
    pub changes: usize,
    /// Proxies left out because a change of theirs is still in flight.
    pub busy: usize,
    /// Signal queries that failed (their proxies held).
    pub query_errors: usize,
    pub error: Option<String>,
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
        Ok(Arc::new(Engine {
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
        }))
    }

    /// The proxies a policy selects, with fresh state, and the ladders they need.
    async fn fleet_for(
        &self,
        policy: &Policy,
        now: Timestamp,
    ) -> Result<(Vec<ProxyState>, HashMap<(String, String), Ladder>), PortError> {
        let mut cache = self.fleet.lock().await;
        let stale = cache
            .loaded_at
            .is_none_or(|t| now.since(t) >= self.options.fleet_refresh);
        // Current values and status must be fresh for every pass: re-read the proxy list
        // for each evaluation time (once for all the policies due then), and the ladders
        // only when stale or for a new region pair.
        let read_now = cache.proxies_for != Some(now);
        let proxies = if read_now {
            let proxies = self.cloud.list_proxies().await?;
            cache.proxies_for = Some(now);
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
        Ok((selected, cache.ladders.clone()))
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
                    last.remove(&key);
                    at.push(i);
                    fresh.push(rec);
                }
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
            if rec.outcome == Outcome::Held && rec.note.is_none() {
                rec.id = id;
                last.insert((rec.policy.clone(), rec.proxy_id.clone()), rec);
            }
        }
        Ok(ids
            .into_iter()
            .map(|id| id.expect("every record has an id"))
            .collect())
    }

    /// One pass of `policy` at `now`. Changes are sent on tasks whose handles are pushed
    /// to `calls`, so the caller decides whether to wait for them (dropping a handle does
    /// not cancel the call).
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
        let (proxies, ladders) = match self.fleet_for(policy, now).await {
            Ok(f) => f,
            Err(e) => {
                error!(policy = %policy.name, error = %e, "cannot read the fleet; nothing decided this pass");
                report.error = Some(e.to_string());
                return report;
            }
        };
        let ids: Vec<String> = proxies.iter().map(|p| p.id.clone()).collect();
        let readings = self.metrics.observe(policy, &ids, now).await;
        // (The metrics adapter logs each failure with its details.)
        report.query_errors = readings.query_errors.len();
        for (kind, _) in &readings.query_errors {
            self.stats
                .query_errors
                .with_label_values(&[policy.name.as_str(), kind.as_str()])
                .inc();
        }

        // Decide every proxy, then log the whole pass in one batch (one flush) before
        // sending anything: durable before acting, without a disk sync per proxy.
        let empty = core::Observation::default();
        let mut decided = Vec::with_capacity(proxies.len());
        let mut records = Vec::with_capacity(proxies.len());
        for proxy in &proxies {
            if self.busy.lock().expect("lock").contains(&proxy.id) {
                report.busy += 1;
                debug!(policy = %policy.name, proxy = %proxy.id, "change in flight; not evaluated");
                continue;
            }
            let key = (policy.name.clone(), proxy.id.clone());
            let state = self
                .states
                .lock()
                .expect("lock")
                .get(&key)
                .cloned()
                .unwrap_or_default();
            let ladder = ladders.get(&(
                proxy.access_region.clone(),
                proxy.real_server_region.clone(),
            ));
            let obs = readings.per_proxy.get(&proxy.id).unwrap_or(&empty);
            let decision = core::decide(policy, proxy, ladder, obs, &state, now);
            report.evaluated += 1;

            let mode = if self.options.dry_run {
                Mode::DryRun
            } else {
                policy.mode
            };
            let mut note = None;
            let outcome = match decision.verdict {
                Verdict::Change => {
                    let blocked = self.blocked.lock().expect("lock").get(&proxy.id).cloned();
                    match blocked {
                        Some(b) if b.snapshot == snapshot(proxy) => {
                            note = Some(format!(
                                "not sent: an earlier change was rejected with {} and the proxy has not changed since",
                                b.code
                            ));
                            Outcome::Skipped
                        }
                        _ => {
                            self.blocked.lock().expect("lock").remove(&proxy.id);
                            if mode == Mode::DryRun {
                                Outcome::DryRun
                            } else {
                                Outcome::Planned
                            }
                        }
                    }
                }
                Verdict::Hold | Verdict::Wait => Outcome::Held,
                Verdict::Skip => Outcome::Skipped,
            };
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
            decided.push((key, decision, state, proxy, outcome));
        }
        let ids = match self.log_pass(records) {
            Ok(ids) => ids,
            Err(e) => {
                // If the log cannot take the pass, nothing is sent and no state moves.
                error!(policy = %policy.name, error = %e, "cannot log the pass's decisions; not acting on them");
                report.error = Some(format!("decision log: {e}"));
                return report;
            }
        };

        let mut changes = Vec::new();
        for (id, (key, decision, state, proxy, outcome)) in ids.into_iter().zip(decided) {
            for r in &decision.reasons {
                self.stats
                    .decisions
                    .with_label_values(&[policy.name.as_str(), outcome.as_str(), r.code.as_str()])
                    .inc();
            }
            if decision.verdict == Verdict::Change || tracing::enabled!(tracing::Level::DEBUG) {
                info!(
                    policy = %policy.name, proxy = %proxy.id, id = %id, outcome = outcome.as_str(),
                    bandwidth = %format!("{}->{}", decision.bandwidth_from, decision.bandwidth_to),
                    concurrent = %format!("{}->{}", decision.concurrent_from, decision.concurrent_to),
                    reasons = %decision.reason_codes().join(","),
                    "decision"
                );
            }
            if outcome == Outcome::Planned {
                changes.push((id, decision, state, proxy.clone(), policy.billing_type));
            } else {
                // Held, dry-run and skipped decisions carry their state on (a dry-run
                // change counts as made, so its cooldowns show what live mode would do).
                let next = if outcome == Outcome::Skipped && decision.verdict == Verdict::Change {
                    state
                } else {
                    decision.next_state.clone()
                };
                self.keep_state(&key, next);
            }
        }

        // Urgent first: scale-ups reach the budget before scale-downs.
        changes.sort_by_key(|c| c.1.direction != Some(Direction::Up));
        report.changes = changes.len();
        for (id, decision, prev_state, proxy, billing_type) in changes {
            self.busy.lock().expect("lock").insert(proxy.id.clone());
            let call = ModifyCall {
                proxy_id: proxy.id.clone(),
                bandwidth: Some(decision.bandwidth_to),
                concurrent: Some(decision.concurrent_to),
                client_token: id.clone(),
                billing_type,
                urgent: decision.direction == Some(Direction::Up),
            };
            let engine = Arc::clone(self);
            let key = (policy.name.clone(), proxy.id.clone());
            calls.push(tokio::spawn(async move {
                let result = engine.cloud.modify(call).await;
                engine
                    .settle(&key, &id, &proxy, result, decision.next_state, prev_state)
                    .await;
            }));
        }
        self.stats
            .pass_duration
            .with_label_values(&[policy.name.as_str()])
            .observe(started.elapsed().as_secs_f64());
        report
    }

    fn keep_state(&self, key: &(String, String), state: ControllerState) {
        if let Err(e) = self.journal.save_state(&key.0, &key.1, &state) {
            error!(policy = %key.0, proxy = %key.1, error = %e, "cannot persist controller state");
        }
        self.states.lock().expect("lock").insert(key.clone(), state);
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
        let (outcome, update) = match &result {
            ModifyResult::Applied {
                request_id,
                attempts,
                confirmed_duplicate,
            } => {
                info!(proxy = %proxy.id, id, request_id = %request_id, attempts, confirmed_duplicate, "change applied");
                (
                    Outcome::Applied,
                    OutcomeUpdate {
                        request_id: Some(request_id.clone()),
                        attempts: *attempts,
                        ..OutcomeUpdate::default()
                    },
                )
            }
            ModifyResult::Rejected {
                code,
                message,
                request_id,
                attempts,
            } => {
                warn!(proxy = %proxy.id, id, code = %code, message = %message, "change rejected; proxy skipped until it changes");
                self.blocked.lock().expect("lock").insert(
                    proxy.id.clone(),
                    Blocked {
                        code: code.clone(),
                        snapshot: snapshot(proxy),
                    },
                );
                (
                    Outcome::Failed,
                    OutcomeUpdate {
                        request_id: request_id.clone(),
                        error_code: Some(code.clone()),
                        error_message: Some(message.clone()),
                        attempts: *attempts,
                    },
                )
            }
            ModifyResult::Failed {
                code,
                message,
                attempts,
            } => {
                warn!(proxy = %proxy.id, id, code = ?code, message = %message, attempts, "change failed after retries");
                (
                    Outcome::Failed,
                    OutcomeUpdate {
                        request_id: None,
                        error_code: code.clone(),
                        error_message: Some(message.clone()),
                        attempts: *attempts,
                    },
                )
            }
        };
        let label = match &result {
            ModifyResult::Applied { .. } => "applied".to_string(),
            ModifyResult::Rejected { code, .. } => format!("rejected:{code}"),
            ModifyResult::Failed { .. } => "failed".to_string(),
        };
        self.stats
            .modify_calls
            .with_label_values(&[label.as_str()])
            .inc();
        if let Err(e) = self.journal.record_outcome(id, outcome, &update) {
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
            s
        };
        self.keep_state(key, state);
        if outcome == Outcome::Applied && self.options.watch_completion {
            self.watch(id, &proxy.id).await;
        }
        self.busy.lock().expect("lock").remove(&proxy.id);
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
                    if let Err(e) = self.journal.record_completion(id, at) {
                        error!(id, error = %e, "cannot record completion");
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

    /// At start-up: decisions logged as planned but never answered (the process died in
    /// between) are re-sent with the same ClientToken — a duplicate means the first
    /// attempt took effect — unless they are too old or the proxy moved on.
    pub async fn reconcile(self: &Arc<Self>, now: Timestamp) -> Result<usize, ReconcileError> {
        let pending = self.journal.pending()?;
        if pending.is_empty() {
            return Ok(0);
        }
        info!(
            count = pending.len(),
            "reconciling decisions logged without an outcome"
        );
        let proxies = self.cloud.list_proxies().await?;
        let by_id: HashMap<&str, &ProxyState> =
            proxies.iter().map(|p| (p.id.as_str(), p)).collect();
        let mut done = 0;
        for p in pending {
            let current = by_id.get(p.proxy_id.as_str()).copied();
            let at_target = current
                .is_some_and(|c| c.bandwidth == p.bandwidth_to && c.concurrent == p.concurrent_to);
            let at_origin = current.is_some_and(|c| {
                c.bandwidth == p.bandwidth_from && c.concurrent == p.concurrent_from
            });
            let fresh = now.since(p.time) <= self.options.reconcile_max_age;
            let (outcome, update) = if at_target || (fresh && at_origin) {
                // Same ClientToken: the API either applies it now or answers that it
                // already did (DuplicatedRequest, confirmed by the client).
                let call = ModifyCall {
                    proxy_id: p.proxy_id.clone(),
                    bandwidth: Some(p.bandwidth_to),
                    concurrent: Some(p.concurrent_to),
                    client_token: p.id.clone(),
                    billing_type: p.billing_type,
                    urgent: p.bandwidth_to > p.bandwidth_from
                        || p.concurrent_to > p.concurrent_from,
                };
                match self.cloud.modify(call).await {
                    ModifyResult::Applied {
                        request_id,
                        attempts,
                        ..
                    } => (
                        Outcome::Applied,
                        OutcomeUpdate {
                            request_id: Some(request_id),
                            attempts,
                            ..Default::default()
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
            } else {
                (
                    Outcome::Failed,
                    OutcomeUpdate {
                        error_code: Some("Reconcile.Abandoned".into()),
                        error_message: Some(if current.is_none() {
                            "the proxy no longer exists".into()
                        } else if !fresh {
                            "logged too long ago to re-send safely; a new decision will be made"
                                .into()
                        } else {
                            "the proxy changed since the decision; a new decision will be made"
                                .into()
                        }),
                        ..Default::default()
                    },
                )
            };
            info!(id = %p.id, proxy = %p.proxy_id, outcome = outcome.as_str(), "reconciled");
            self.journal.record_outcome(&p.id, outcome, &update)?;
            done += 1;
        }
        Ok(done)
    }
}

/// Why start-up reconciliation could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cloud(#[from] PortError),
}
