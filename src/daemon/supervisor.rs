//! Per-policy tasks on their schedules; reload and graceful shutdown.
//!
//! Each policy has one task that sleeps until its next fire time and runs a pass. Passes
//! of one policy never overlap (a slow pass makes the task skip the ticks it missed), and
//! validation guarantees that no proxy belongs to two policies, so a proxy is never
//! evaluated twice at once; the engine also leaves out proxies whose change is in flight.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::engine::Engine;
use super::ports::{Cloud, Metrics};
use super::schedule::next_fire;
use crate::policy::Policy;

pub enum Control {
    /// Replace the running policies (already validated).
    Reload(Vec<Arc<Policy>>),
    /// Stop scheduling, let in-flight work finish (bounded), return.
    Shutdown,
}

struct PolicyTask {
    stop: watch::Sender<bool>,
    handle: JoinHandle<Vec<JoinHandle<()>>>,
}

fn spawn_policy<C: Cloud, M: Metrics>(
    engine: Arc<Engine<C, M>>,
    policy: Arc<Policy>,
) -> PolicyTask {
    let (stop, mut stopped) = watch::channel(false);
    let handle = tokio::spawn(async move {
        let mut calls: Vec<JoinHandle<()>> = Vec::new();
        let mut last: Option<crate::time::Timestamp> = None;
        loop {
            let now = engine.clock.now();
            let Some(next) = next_fire(&policy.schedule, now) else {
                warn!(policy = %policy.name, "the schedule has no future fire time; policy idle");
                let _ = stopped.changed().await;
                break;
            };
            if let Some(prev) = last
                && let Some(expected) = next_fire(&policy.schedule, prev)
                && expected < next
            {
                engine
                    .stats
                    .skipped_ticks
                    .with_label_values(&[policy.name.as_str()])
                    .inc();
                warn!(policy = %policy.name, missed_from = %expected, "pass overran its interval; skipped ticks");
            }
            tokio::select! {
                _ = tokio::time::sleep_until(engine.clock.instant_at(next)) => {}
                _ = stopped.changed() => break,
            }
            if *stopped.borrow() {
                break;
            }
            let report = engine.run_pass(&policy, next, &mut calls).await;
            if !report.follower {
                info!(policy = %policy.name, time = %next, evaluated = report.evaluated, changes = report.changes, busy = report.busy, "pass done");
            }
            calls.retain(|h| !h.is_finished());
            last = Some(next);
        }
        calls
    });
    PolicyTask { stop, handle }
}

/// Runs the policies until `Control::Shutdown` (or the control channel closes). On
/// shutdown, in-flight passes and calls get up to `grace` to finish.
pub async fn supervise<C: Cloud, M: Metrics>(
    engine: Arc<Engine<C, M>>,
    policies: Vec<Arc<Policy>>,
    mut control: mpsc::Receiver<Control>,
    grace: Duration,
) {
    engine.set_policies(&policies);
    let mut tasks: Vec<PolicyTask> = policies
        .into_iter()
        .map(|p| spawn_policy(Arc::clone(&engine), p))
        .collect();
    let mut outstanding: Vec<JoinHandle<()>> = Vec::new();
    // Until Control::Shutdown, or the control channel closes.
    while let Some(Control::Reload(new)) = control.recv().await {
        info!(policies = new.len(), "reloading policies");
        engine.set_policies(&new);
        outstanding.extend(stop_all(std::mem::take(&mut tasks)).await);
        tasks = new
            .into_iter()
            .map(|p| spawn_policy(Arc::clone(&engine), p))
            .collect();
        outstanding.retain(|h| !h.is_finished());
    }
    info!("stopping: no new passes; waiting for in-flight work");
    outstanding.extend(stop_all(tasks).await);
    let wait = async {
        for h in outstanding {
            let _ = h.await;
        }
    };
    if tokio::time::timeout(grace, wait).await.is_err() {
        warn!(grace = ?grace, "in-flight calls did not finish in time; they will be reconciled at the next start");
    }
}

/// Signals every task to stop after its current pass; returns their unfinished calls.
async fn stop_all(tasks: Vec<PolicyTask>) -> Vec<JoinHandle<()>> {
    for t in &tasks {
        let _ = t.stop.send(true);
    }
    let mut calls = Vec::new();
    for t in tasks {
        if let Ok(c) = t.handle.await {
            calls.extend(c);
        }
    }
    calls
}

/// One pass of every policy at `now`, waiting for every call (for `run --once`).
pub async fn run_once<C: Cloud, M: Metrics>(
    engine: &Arc<Engine<C, M>>,
    policies: &[Arc<Policy>],
    now: crate::time::Timestamp,
) -> Vec<super::engine::PassReport> {
    engine.set_policies(policies);
    let mut calls = Vec::new();
    let mut reports = Vec::new();
    for p in policies {
        reports.push(engine.run_pass(p, now, &mut calls).await);
    }
    for h in calls {
        let _ = h.await;
    }
    reports
}
