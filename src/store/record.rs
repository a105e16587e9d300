//! The decision record (format version 1): one decision of `core::decide` with the
//! context the log keeps beside it: its inputs, its mode and what became of it.
//!
//! This is the only serialized form of a decision. Its JSON field names are a contract
//! (`log list --json`, `log export`, the daemon's `/log/decisions` endpoint): add fields,
//! rename none, and bump [`RECORD_VERSION`] on an incompatible change.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::core::{
    Decision, Dim, DimTrace, Direction, Ladder, Observation, ProxyState, Reading, Verdict,
};
use crate::policy::{Mode, Policy, Rule};
use crate::time::{Timestamp, format_duration};

/// The record format version written into every record as `v`.
pub const RECORD_VERSION: u32 = 1;

/// Longest decision id: the id is also the `ClientToken` of the modify call (≤ 64 ASCII).
pub const MAX_ID_LEN: usize = 64;
/// Characters of the proxy id kept in a decision id (`d-` + 13 + `-` + proxy + `-` + 4).
const MAX_ID_PROXY_CHARS: usize = MAX_ID_LEN - 21;
/// The largest time a decision id can spell in 13 digits (year 2286).
const MAX_ID_MS: i64 = 9_999_999_999_999;

/// The decision id, also the `ClientToken` of its `ModifyProxyConfiguration`:
/// `d-<Unix ms, 13 digits>-<proxy id>-<seq, 4 hex digits>`, e.g.
/// `d-1795939200000-link-kicu7m5b-0000`.
///
/// - Derived from the decision's own time and proxy only: no clock read, and a retry of
///   the same decision rebuilds the same token.
/// - Sortable by time as a string (fixed-width milliseconds, until the year 2286).
/// - ASCII and at most 64 characters: the proxy id is reduced to `[A-Za-z0-9_-]` and cut
///   to 43 characters (GAAP ids are `link-xxxxxxxx`, 13 characters).
/// - Unique: `seq` tells apart decisions for the same proxy in the same millisecond (two
///   policies selecting one proxy, or a replay); the log picks the first free one.
pub fn decision_id(time: Timestamp, proxy_id: &str, seq: u16) -> String {
    let ms = id_millis(time);
    let proxy = id_proxy(proxy_id);
    format!("d-{ms:013}-{proxy}-{seq:04x}")
}

/// The proxy id as a decision id spells it.
pub(crate) fn id_proxy(proxy_id: &str) -> String {
    proxy_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(MAX_ID_PROXY_CHARS)
        .collect()
}

/// The proxy part of a decision id (`link-kicu7m5b` in `d-...-link-kicu7m5b-0000`).
pub(crate) fn id_proxy_part(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("d-")?.get(14..)?;
    rest.rsplit_once('-').map(|(p, _)| p)
}

/// The millisecond a decision id spells for `time` (clamped to what 13 digits hold).
pub(crate) fn id_millis(time: Timestamp) -> i64 {
    time.millis().clamp(0, MAX_ID_MS)
}

/// Splits a decision id into (milliseconds, sequence). None if it is not one.
pub fn parse_decision_id(id: &str) -> Option<(i64, u16)> {
    if id.len() > MAX_ID_LEN || !id.is_ascii() {
        return None;
    }
    let rest = id.strip_prefix("d-")?;
    let (ms, rest) = rest.split_at_checked(13)?;
    if !ms.bytes().all(|b| b.is_ascii_digit()) || !rest.starts_with('-') {
        return None;
    }
    let (_, seq) = rest.rsplit_once('-')?;
    if seq.len() != 4 {
        return None;
    }
    Some((ms.parse().ok()?, u16::from_str_radix(seq, 16).ok()?))
}

/// What became of a decision. The strings are a contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// No change was needed, or a stage blocked it: nothing to send.
    #[serde(rename = "held")]
    Held,
    /// A change, logged but not sent (dry-run mode).
    #[serde(rename = "dry-run")]
    DryRun,
    /// A change, logged and about to be sent: no answer recorded yet.
    #[serde(rename = "planned")]
    Planned,
    /// The cloud accepted the change.
    #[serde(rename = "applied")]
    Applied,
    /// The cloud rejected it, or retries ran out.
    #[serde(rename = "failed")]
    Failed,
    /// Not evaluable (guard), or blocked by an earlier rejection.
    #[serde(rename = "skipped")]
    Skipped,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Held,
        Outcome::DryRun,
        Outcome::Planned,
        Outcome::Applied,
        Outcome::Failed,
        Outcome::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Held => "held",
            Outcome::DryRun => "dry-run",
            Outcome::Planned => "planned",
            Outcome::Applied => "applied",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }

    /// The outcome a fresh decision is logged with: a change is `planned` (live) or
    /// `dry-run`; a hold or wait is `held`; a skip is `skipped`.
    pub fn initial(verdict: Verdict, mode: Mode) -> Outcome {
        match (verdict, mode) {
            (Verdict::Change, Mode::Live) => Outcome::Planned,
            (Verdict::Change, Mode::DryRun) => Outcome::DryRun,
            (Verdict::Hold | Verdict::Wait, _) => Outcome::Held,
            (Verdict::Skip, _) => Outcome::Skipped,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Outcome, String> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown outcome `{s}`; use one of: held, dry-run, planned, applied, failed, skipped"
                )
            })
    }
}

/// One reason with its details, as stored (codes as their stable strings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReasonEntry {
    /// `bandwidth:scale.up`, or `guard.adjusting` for the whole proxy.
    pub reason: String,
    /// `scale.up`.
    pub code: String,
    /// The decision stage (1–10) it belongs to.
    pub stage: u8,
    /// `bandwidth`, `concurrent`, or absent for the whole proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<Dim>,
    /// A plain sentence with the numbers.
    pub detail: String,
}

/// How a policy drove one dimension, copied into the record so `log show` can explain
/// the decision after the policy file has changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DimPolicy {
    pub signal: String,
    /// The signal's max_age (`5m`).
    pub max_age: Option<String>,
    pub min: u32,
    pub max: u32,
    /// Target tracking: the target utilization; None for step rules.
    pub target_utilization: Option<f64>,
    /// The rule in words (`target utilization 0.7`, `step rules: ...`).
    pub rule: String,
}

/// One direction's behavior, copied from the policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BehaviorSnapshot {
    pub tolerance: f64,
    pub stabilization: String,
    pub max_steps: u32,
    pub cooldown: String,
}

/// The parts of the policy that shaped the decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicySnapshot {
    pub bandwidth: Option<DimPolicy>,
    pub concurrent: Option<DimPolicy>,
    pub scale_up: BehaviorSnapshot,
    pub scale_down: BehaviorSnapshot,
    /// `hold`, or `fallback after N (bandwidth X, concurrent Y)`.
    pub on_missing_data: String,
    pub windows: usize,
}

impl PolicySnapshot {
    pub fn of(policy: &Policy) -> PolicySnapshot {
        let dim = |d: Option<&crate::policy::Dimension>| {
            d.map(|d| {
                let (target_utilization, rule) = match &d.rule {
                    Rule::TargetTracking { target_utilization } => (
                        Some(*target_utilization),
                        format!("target utilization {target_utilization}"),
                    ),
                    Rule::Steps(steps) => {
                        let parts: Vec<String> = steps
                            .iter()
                            .map(|s| match (s.above, s.below) {
                                (Some(a), Some(b)) => format!("[{a}, {b}) → {:+}", s.change),
                                (Some(a), None) => format!(">= {a} → {:+}", s.change),
                                (None, Some(b)) => format!("< {b} → {:+}", s.change),
                                (None, None) => format!("any → {:+}", s.change),
                            })
                            .collect();
                        (None, format!("step rules: {}", parts.join(", ")))
                    }
                };
                DimPolicy {
                    signal: d.signal.clone(),
                    max_age: policy
                        .signals
                        .get(&d.signal)
                        .map(|s| format_duration(s.max_age)),
                    min: d.min,
                    max: d.max,
                    target_utilization,
                    rule,
                }
            })
        };
        let behavior = |b: &crate::policy::DirectionBehavior| BehaviorSnapshot {
            tolerance: b.tolerance,
            stabilization: format_duration(b.stabilization),
            max_steps: b.max_steps,
            cooldown: format_duration(b.cooldown),
        };
        let md = &policy.on_missing_data;
        let on_missing_data = match md.action {
            crate::policy::MissingAction::Hold => "hold".to_string(),
            crate::policy::MissingAction::Fallback => format!(
                "fallback after {} (bandwidth {}, concurrent {})",
                md.after,
                md.bandwidth.map_or("-".into(), |v| v.to_string()),
                md.concurrent.map_or("-".into(), |v| v.to_string()),
            ),
        };
        PolicySnapshot {
            bandwidth: dim(policy.bandwidth.as_ref()),
            concurrent: dim(policy.concurrent.as_ref()),
            scale_up: behavior(&policy.behavior.scale_up),
            scale_down: behavior(&policy.behavior.scale_down),
            on_missing_data,
            windows: policy.windows.len(),
        }
    }

    pub fn dim(&self, d: Dim) -> Option<&DimPolicy> {
        match d {
            Dim::Bandwidth => self.bandwidth.as_ref(),
            Dim::Concurrent => self.concurrent.as_ref(),
        }
    }
}

/// What the decision was made from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    /// Every observed signal by name: a value with its sample time (Unix ms), or why
    /// there was none.
    pub signals: BTreeMap<String, Reading>,
    /// The proxy as the engine saw it.
    pub proxy: ProxyState,
    /// The allowed values (None: the region's lists were unknown).
    pub ladder: Option<Ladder>,
    /// What each stage made of each dimension.
    pub bandwidth: DimTrace,
    pub concurrent: DimTrace,
    /// The policy settings that shaped the decision, when the engine passed the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySnapshot>,
}

impl Inputs {
    pub fn trace(&self, d: Dim) -> &DimTrace {
        match d {
            Dim::Bandwidth => &self.bandwidth,
            Dim::Concurrent => &self.concurrent,
        }
    }
}

/// One logged decision. JSON field names are a contract (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The decision id, also the ClientToken (see [`decision_id`]).
    pub id: String,
    /// Evaluation time, RFC 3339 UTC.
    #[serde(with = "rfc3339")]
    pub time: Timestamp,
    /// The same time in Unix milliseconds.
    pub time_ms: i64,
    pub policy: String,
    pub proxy_id: String,
    /// `live` or `dry-run`.
    pub mode: String,
    /// `change`, `hold`, `wait` or `skip` (what the core decided).
    pub verdict: Verdict,
    /// `up` or `down` for a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    pub bandwidth_from: u32,
    pub bandwidth_to: u32,
    pub concurrent_from: u32,
    pub concurrent_to: u32,
    /// Reason strings in stage order (`bandwidth:scale.up`).
    pub reasons: Vec<String>,
    /// The same reasons with their stage and details.
    pub reason_details: Vec<ReasonEntry>,
    pub outcome: Outcome,
    /// The RequestId of the modify call's answer.
    pub request_id: Option<String>,
    /// The API error code when the call failed (`FailedOperation.NotSupportScalar`).
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Attempts the client made (retries of the same ClientToken included).
    pub attempts: u32,
    /// When the proxy was seen RUNNING again after an applied change.
    #[serde(default, with = "rfc3339_opt")]
    pub completed_at: Option<Timestamp>,
    /// Wall-clock time the modify call's outcome was recorded: every send of this decision
    /// reached the server before it. A restarted daemon counts these sends against its
    /// 20/s budget ([`crate::store::budget`]). Absent in records written before it existed.
    #[serde(default, with = "rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Timestamp>,
    /// `BillingType` sent with the modify call, if the policy sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_type: Option<i64>,
    /// Why the engine overrode the core's verdict (e.g. blocked by an earlier rejection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Identical holds counted on this record after it: the proxy's next evaluations by the
    /// same policy that held the same way (same values, same reason codes) within
    /// [`FOLD_SPAN`] of `time`. Their inputs are not kept; this record's are the first's.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeats: u32,
    /// The time of the last hold counted in `repeats`.
    #[serde(default, with = "rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub last_time: Option<Timestamp>,
    /// The daemon that made the decision, under `[ha]` (several daemons share one log);
    /// absent for a lone daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub inputs: Inputs,
}

/// How long one record may keep counting identical holds before a new record starts (so
/// a steady proxy still leaves a full record, inputs included, every hour).
pub const FOLD_SPAN: std::time::Duration = std::time::Duration::from_secs(3600);

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the engine knows beside a [`Decision`] when it logs it.
#[derive(Clone, Copy, Debug)]
pub struct RecordContext<'a> {
    pub mode: Mode,
    /// Usually [`Outcome::initial`]; the engine may override it (e.g. `skipped`).
    pub outcome: Outcome,
    pub proxy: &'a ProxyState,
    pub ladder: Option<&'a Ladder>,
    pub observation: &'a Observation,
    /// The policy (its name, the snapshot `log show` explains with, the billing type).
    pub policy: &'a Policy,
    pub note: Option<&'a str>,
}

/// The answer to a sent decision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutcomeUpdate {
    pub request_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub attempts: u32,
}

impl DecisionRecord {
    /// How far a record has come (logged, answered and when, completed, holds counted):
    /// of two copies of one decision, the one further along wins (the shared log's
    /// mirror never moves a record back).
    pub fn progress(&self) -> (bool, Option<Timestamp>, bool, u32, Option<Timestamp>) {
        (
            self.outcome != Outcome::Planned,
            self.answered_at,
            self.completed_at.is_some(),
            self.repeats,
            self.last_time,
        )
    }

    /// Builds the record of a decision, with id sequence 0 (the log moves to the next free
    /// sequence if another decision already took it).
    pub fn from_decision(d: &Decision, ctx: &RecordContext<'_>) -> DecisionRecord {
        DecisionRecord {
            v: RECORD_VERSION,
            id: decision_id(d.time, &ctx.proxy.id, 0),
            time: d.time,
            time_ms: d.time.millis(),
            policy: ctx.policy.name.clone(),
            proxy_id: ctx.proxy.id.clone(),
            mode: ctx.mode.as_str().to_string(),
            verdict: d.verdict,
            direction: d.direction,
            bandwidth_from: d.bandwidth_from,
            bandwidth_to: d.bandwidth_to,
            concurrent_from: d.concurrent_from,
            concurrent_to: d.concurrent_to,
            reasons: d.reason_codes(),
            reason_details: d
                .reasons
                .iter()
                .map(|r| ReasonEntry {
                    reason: r.to_string(),
                    code: r.code.as_str().to_string(),
                    stage: r.code.stage(),
                    dim: r.dim,
                    detail: r.detail.to_string(),
                })
                .collect(),
            outcome: ctx.outcome,
            request_id: None,
            error_code: None,
            error_message: None,
            attempts: 0,
            completed_at: None,
            answered_at: None,
            billing_type: ctx.policy.billing_type,
            note: ctx.note.map(str::to_string),
            repeats: 0,
            instance: None,
            last_time: None,
            inputs: Inputs {
                signals: ctx.observation.signals.clone(),
                proxy: ctx.proxy.clone(),
                ladder: ctx.ladder.cloned(),
                bandwidth: d.bandwidth.clone(),
                concurrent: d.concurrent.clone(),
                policy: Some(PolicySnapshot::of(ctx.policy)),
            },
        }
    }

    /// Whether this new record repeats `prev`, the proxy's previous record, closely enough
    /// to be counted on it instead of stored: both holds (or waits) with nothing sent and
    /// no note, the same policy, mode, values and reason codes, and `prev` opened less than
    /// [`FOLD_SPAN`] before this one.
    pub fn repeats_hold(&self, prev: &DecisionRecord) -> bool {
        let quiet = |r: &DecisionRecord| {
            r.note.is_none()
                && match r.outcome {
                    Outcome::Held => matches!(r.verdict, Verdict::Hold | Verdict::Wait),
                    // A proxy that cannot be scaled (Scalarable 0, a status the guard
                    // skips) says the same thing every pass.
                    Outcome::Skipped => r.verdict == Verdict::Skip,
                    _ => false,
                }
        };
        quiet(self)
            && quiet(prev)
            && self.verdict == prev.verdict
            && self.policy == prev.policy
            && self.proxy_id == prev.proxy_id
            && self.mode == prev.mode
            && (
                self.bandwidth_from,
                self.bandwidth_to,
                self.concurrent_from,
                self.concurrent_to,
            ) == (
                prev.bandwidth_from,
                prev.bandwidth_to,
                prev.concurrent_from,
                prev.concurrent_to,
            )
            && self.reasons == prev.reasons
            && self.time > prev.time.max(prev.last_time.unwrap_or(prev.time))
            && self.time.since(prev.time) < FOLD_SPAN
    }

    /// Applies the answer to a sent decision.
    pub fn apply_outcome(&mut self, outcome: Outcome, update: &OutcomeUpdate) {
        self.outcome = outcome;
        if update.request_id.is_some() {
            self.request_id = update.request_id.clone();
        }
        self.error_code = update.error_code.clone();
        self.error_message = update.error_message.clone();
        self.attempts = update.attempts;
    }

    /// True if the decision changes the proxy (in either dimension).
    pub fn is_change(&self) -> bool {
        self.bandwidth_from != self.bandwidth_to || self.concurrent_from != self.concurrent_to
    }
}

/// A filter over the log. Every field set must match; `since` is inclusive and `until`
/// exclusive. `limit` keeps the newest matching records (still printed oldest first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub proxy: Option<String>,
    pub policy: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub outcome: Option<Outcome>,
    pub limit: Option<usize>,
}

impl LogFilter {
    /// True if the record passes every filter but `limit`.
    pub fn matches(&self, r: &DecisionRecord) -> bool {
        self.proxy.as_ref().is_none_or(|p| *p == r.proxy_id)
            && self.policy.as_ref().is_none_or(|p| *p == r.policy)
            && self.since.is_none_or(|t| r.time >= t)
            && self.until.is_none_or(|t| r.time < t)
            && self.outcome.is_none_or(|o| o == r.outcome)
    }
}

/// `time` fields as RFC 3339 strings (Unix milliseconds are accepted on reading).
mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::time::{Timestamp, parse_time};

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(super) enum Wire {
        Text(String),
        Millis(i64),
    }

    impl Wire {
        pub(super) fn into_timestamp<E: serde::de::Error>(self) -> Result<Timestamp, E> {
            match self {
                Wire::Text(s) => parse_time(&s).map_err(E::custom),
                Wire::Millis(ms) => Ok(Timestamp(ms)),
            }
        }
    }

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        Wire::deserialize(d)?.into_timestamp()
    }
}

mod rfc3339_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::rfc3339::Wire;
    use crate::time::Timestamp;

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Option::<Wire>::deserialize(d)?
            .map(Wire::into_timestamp)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures;

    #[test]
    fn ids_are_ascii_bounded_sortable_and_parse_back() {
        let cases: &[(i64, &str, u16, &str)] = &[
            (
                1_795_939_200_000,
                "link-kicu7m5b",
                0,
                "d-1795939200000-link-kicu7m5b-0000",
            ),
            (
                1_795_939_200_001,
                "link-kicu7m5b",
                0x1f,
                "d-1795939200001-link-kicu7m5b-001f",
            ),
            (5, "link-a", 0xffff, "d-0000000000005-link-a-ffff"),
            (-7, "link-a", 1, "d-0000000000000-link-a-0001"),
            (1_000, "li nk/é✓x", 2, "d-0000000001000-linkx-0002"),
        ];
        for (ms, proxy, seq, want) in cases {
            let id = decision_id(Timestamp(*ms), proxy, *seq);
            assert_eq!(id, *want);
            assert_eq!(id_proxy_part(&id), Some(id_proxy(proxy).as_str()));
            assert_eq!(parse_decision_id(&id), Some(((*ms).max(0), *seq)));
        }
        let long = "x".repeat(200);
        let id = decision_id(Timestamp(1), &long, 3);
        assert_eq!(id.len(), MAX_ID_LEN);
        assert!(id.is_ascii());
        assert_eq!(parse_decision_id(&id), Some((1, 3)));
        // Fixed-width milliseconds: string order is time order across digit changes.
        let a = decision_id(Timestamp(999_999_999_999), "link-z", 0);
        let b = decision_id(Timestamp(1_000_000_000_000), "link-a", 0);
        assert!(a < b);
        for bad in [
            "",
            "d-",
            "x-1795939200000-l-0000",
            "d-17959-l-0000",
            "d-1795939200000-l-00g0",
            "d-1795939200000-l-000",
        ] {
            assert_eq!(parse_decision_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn outcomes_have_exact_strings() {
        let want = ["held", "dry-run", "planned", "applied", "failed", "skipped"];
        for (o, w) in Outcome::ALL.iter().zip(want) {
            assert_eq!(o.as_str(), w);
            assert_eq!(serde_json::to_string(o).unwrap(), format!("\"{w}\""));
            assert_eq!(w.parse::<Outcome>().unwrap(), *o);
        }
        assert!("done".parse::<Outcome>().is_err());
        let cases = [
            (Verdict::Change, Mode::Live, Outcome::Planned),
            (Verdict::Change, Mode::DryRun, Outcome::DryRun),
            (Verdict::Hold, Mode::Live, Outcome::Held),
            (Verdict::Wait, Mode::DryRun, Outcome::Held),
            (Verdict::Skip, Mode::Live, Outcome::Skipped),
        ];
        for (v, m, o) in cases {
            assert_eq!(Outcome::initial(v, m), o, "{v:?} {m:?}");
        }
    }

    #[test]
    fn record_from_a_real_decision_round_trips() {
        let now = Timestamp::from_secs(1_795_939_200);
        let obs = fixtures::observe(100.0, 30_000.0, now - std::time::Duration::from_secs(15));
        let (d, r) = decided(&obs, now, |v| Outcome::initial(v, Mode::Live));
        assert_eq!(d.verdict, Verdict::Change);
        assert_eq!(r.id, "d-1795939200000-link-test0001-0000");
        assert_eq!(r.outcome, Outcome::Planned);
        assert_eq!(r.reasons, d.reason_codes());
        assert!(
            r.reasons.iter().any(|s| s == "bandwidth:scale.up"),
            "{:?}",
            r.reasons
        );
        assert_eq!(r.reason_details.len(), d.reasons.len());
        assert_eq!(
            r.inputs
                .policy
                .as_ref()
                .unwrap()
                .bandwidth
                .as_ref()
                .unwrap()
                .target_utilization,
            Some(0.7)
        );
        let json = serde_json::to_string(&r).unwrap();
        let back: DecisionRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    /// The record of a hold (no data) of `link-test0001` at `secs` after T.
    fn hold_at(secs: i64) -> DecisionRecord {
        let now = Timestamp::from_secs(1_795_939_200 + secs);
        let (d, r) = decided(&Observation::default(), now, |_| Outcome::Held);
        assert_eq!(d.verdict, Verdict::Hold);
        r
    }

    /// The fixture policy's decision for `link-test0001` (10 Mbps, 2 units) on `obs`, and
    /// its live record with the outcome `outcome(verdict)`.
    fn decided(
        obs: &Observation,
        now: Timestamp,
        outcome: impl Fn(Verdict) -> Outcome,
    ) -> (Decision, DecisionRecord) {
        let (policy, proxy, ladder) = (
            fixtures::policy(),
            fixtures::proxy(10, 2),
            fixtures::ladder(),
        );
        let d = crate::core::decide(
            &policy,
            &proxy,
            Some(&ladder),
            obs,
            &Default::default(),
            now,
        );
        let ctx = RecordContext {
            mode: Mode::Live,
            outcome: outcome(d.verdict),
            proxy: &proxy,
            ladder: Some(&ladder),
            observation: obs,
            policy: &policy,
            note: None,
        };
        let r = DecisionRecord::from_decision(&d, &ctx);
        (d, r)
    }

    #[test]
    fn a_hold_repeats_its_predecessor_only_when_nothing_differs() {
        let prev = hold_at(0);
        let same = hold_at(30);
        type Edit = fn(&mut DecisionRecord);
        let cases: &[(&str, i64, Edit, bool)] = &[
            ("the same hold 30 s later", 30, |_| {}, true),
            ("59m59s after the run opened", 3599, |_| {}, true),
            ("an hour after the run opened", 3600, |_| {}, false),
            ("at the same time", 0, |_| {}, false),
            ("other values", 30, |r| r.bandwidth_to += 1, false),
            ("other reasons", 30, |r| r.reasons.push("x".into()), false),
            ("another policy", 30, |r| r.policy = "other".into(), false),
            ("another mode", 30, |r| r.mode = "dry-run".into(), false),
            ("a note", 30, |r| r.note = Some("blocked".into()), false),
            ("a change", 30, |r| r.verdict = Verdict::Change, false),
            ("skipped", 30, |r| r.outcome = Outcome::Skipped, false),
        ];
        assert!(same.repeats_hold(&prev));
        for (what, secs, edit, want) in cases {
            let mut r = hold_at(*secs);
            edit(&mut r);
            assert_eq!(r.repeats_hold(&prev), *want, "{what}");
        }
        // A skip (a proxy that cannot be scaled) repeats a skip the same way; a skip
        // never repeats a hold, nor a hold a skip.
        let skip = |r: &mut DecisionRecord| {
            r.outcome = Outcome::Skipped;
            r.verdict = Verdict::Skip;
        };
        let (mut skip_prev, mut skip_next) = (hold_at(0), hold_at(30));
        skip(&mut skip_prev);
        skip(&mut skip_next);
        assert!(skip_next.repeats_hold(&skip_prev));
        assert!(!skip_next.repeats_hold(&prev));
        assert!(!same.repeats_hold(&skip_prev));
        skip_next.note = Some("not sent: an earlier change was rejected".into());
        assert!(!skip_next.repeats_hold(&skip_prev), "a skip with a note");
        // A run is extended only forward in time.
        let mut run = prev.clone();
        run.repeats = 2;
        run.last_time = Some(Timestamp::from_secs(1_795_939_200 + 60));
        assert!(!hold_at(30).repeats_hold(&run));
        assert!(hold_at(90).repeats_hold(&run));
    }
}
