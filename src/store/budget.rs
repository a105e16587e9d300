//! What an earlier process spent of the 20/s modify budget, read from the decision log at
//! start-up: a new process must not start with an empty budget, or a restart right after
//! a burst lets the server see more than 20 modify calls in one second.
//!
//! Conservative by construction. A decision with a recorded answer sent `attempts`
//! requests, all of which reached the server before `answered_at`: they count as sent at
//! `answered_at`. A decision still `planned` (the process stopped between its log write and
//! its answer) may have been sent up to `max_attempts` times, at any moment up to the stop:
//! those count as sent right now. Records without `answered_at` (written before it
//! existed) count at their decision time.

use std::time::Duration;

use super::record::{DecisionRecord, Outcome};
use super::{DecisionLog, LogFilter, StoreError};
use crate::time::Timestamp;

/// How far back decisions are read for answers inside the window: a decision's answer can
/// come long after the decision (queued behind others at 20/s, retried).
pub const LOOKBACK: Duration = Duration::from_secs(3600);

/// The ages (at `now`) of the modify calls the records show inside the last `window`.
/// `records` are the recent decisions, `pending` those without an answer.
pub fn recent_send_ages(
    records: &[DecisionRecord],
    pending: &[DecisionRecord],
    now: Timestamp,
    window: Duration,
    max_attempts: u32,
) -> Vec<Duration> {
    let mut ages = Vec::new();
    for r in records {
        if !r.is_change() || matches!(r.outcome, Outcome::Planned | Outcome::DryRun) {
            continue;
        }
        let at = r.answered_at.unwrap_or(r.time);
        let age = if at >= now {
            Duration::ZERO
        } else {
            now.since(at)
        };
        if age < window {
            ages.extend(std::iter::repeat_n(age, r.attempts as usize));
        }
    }
    for r in pending {
        if r.outcome == Outcome::Planned {
            ages.extend(std::iter::repeat_n(
                Duration::ZERO,
                max_attempts.max(1) as usize,
            ));
        }
    }
    ages
}

/// [`recent_send_ages`] over the log: decisions of the last [`LOOKBACK`] and the pending ones.
pub fn recent_sends(
    log: &DecisionLog,
    now: Timestamp,
    window: Duration,
    max_attempts: u32,
) -> Result<Vec<Duration>, StoreError> {
    let since = Timestamp::from_millis(now.millis() - LOOKBACK.as_millis() as i64);
    let filter = LogFilter {
        since: Some(since),
        ..LogFilter::default()
    };
    let records: Vec<DecisionRecord> = log
        .iter(&filter)
        .filter(|r| r.as_ref().map_or(true, |r| r.is_change()))
        .collect::<Result<_, _>>()?;
    let pending = log.pending()?;
    Ok(recent_send_ages(
        &records,
        &pending,
        now,
        window,
        max_attempts,
    ))
}
