//! `log show ID`: one decision explained stage by stage in plain words, built only from
//! the stored record (its DimTraces, reasons, inputs and outcome). Pure.

use std::fmt::Write as _;

use super::record::{DecisionRecord, Outcome, ReasonEntry};
use crate::core::{Dim, DimTrace, NoData, Reading, Verdict};
use crate::time::{Timestamp, format_duration};

/// Explains a decision in plain words, stage by stage.
pub fn explain(r: &DecisionRecord) -> String {
    let mut o = String::new();
    header(&mut o, r);
    let _ = writeln!(o, "\nStage by stage:");
    let guarded = guard(&mut o, r);
    if guarded {
        let _ = writeln!(
            o,
            "2–9. Not evaluated: the guard stopped the decision before any data was read."
        );
    } else {
        data(&mut o, r);
        for dim in Dim::ALL {
            dimension(&mut o, r, dim);
        }
    }
    result(&mut o, r);
    operator(&mut o, r);
    outcome(&mut o, r);
    o
}

/// An operator's pause or change (issue 12): who, why, until when. A pause applies after
/// stage 10, so it is not a guard stop.
fn operator(o: &mut String, r: &DecisionRecord) {
    for e in r.reason_details.iter().filter(|e| e.code == "guard.paused") {
        let _ = writeln!(o, "   Paused: {} [{}].", e.detail, e.reason);
    }
}

fn unit(dim: Dim) -> &'static str {
    dim.unit()
}

fn title(dim: Dim) -> &'static str {
    match dim {
        Dim::Bandwidth => "Bandwidth",
        Dim::Concurrent => "Concurrent",
    }
}

fn reasons(r: &DecisionRecord, stage: u8, dim: Option<Dim>) -> Vec<&ReasonEntry> {
    r.reason_details
        .iter()
        .filter(|e| e.stage == stage && e.dim == dim)
        .collect()
}

fn with_codes(rs: &[&ReasonEntry]) -> String {
    rs.iter()
        .map(|e| format!("{} [{}]", e.detail, e.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

fn list(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn age(decided: Timestamp, at: Timestamp) -> String {
    if at > decided {
        format!(
            "{} after the decision time",
            format_duration(at.since(decided))
        )
    } else {
        format!("{} old", format_duration(decided.since(at)))
    }
}

fn header(o: &mut String, r: &DecisionRecord) {
    let p = &r.inputs.proxy;
    let _ = writeln!(o, "Decision {}", r.id);
    let _ = writeln!(o, "  time:    {}", r.time);
    let _ = writeln!(o, "  policy:  {} ({} mode)", r.policy, r.mode);
    if let Some(i) = &r.instance {
        let _ = writeln!(o, "  by:      {i}");
    }
    let name = p
        .name
        .as_deref()
        .map(|n| format!(" \"{n}\""))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "  proxy:   {}{name}, {} → {}, status {}, Scalarable {}",
        r.proxy_id,
        p.access_region,
        p.real_server_region,
        p.status.as_str(),
        p.scalarable
    );
    let _ = writeln!(
        o,
        "  change:  bandwidth {} → {} Mbps, concurrent {} → {} x10k conns ({})",
        r.bandwidth_from,
        r.bandwidth_to,
        r.concurrent_from,
        r.concurrent_to,
        match (r.verdict, r.direction) {
            (Verdict::Change, Some(d)) => format!(
                "change, {}",
                match d {
                    crate::core::Direction::Up => "up",
                    crate::core::Direction::Down => "down",
                }
            ),
            (v, _) => v.as_str().to_string(),
        }
    );
    let _ = writeln!(o, "  outcome: {}", r.outcome);
    if let (n @ 1.., Some(last)) = (r.repeats, r.last_time) {
        let _ = writeln!(
            o,
            "  repeated: {n} more evaluation(s) held the same way, the last at {last} \
             (their inputs are not kept; these are the first's)"
        );
    }
    if !r.reasons.is_empty() {
        let _ = writeln!(o, "  reasons: {}", r.reasons.join(", "));
    }
}

/// Stage 1. Returns true if the guard stopped the decision.
fn guard(o: &mut String, r: &DecisionRecord) -> bool {
    let mut rs = reasons(r, 1, None);
    rs.retain(|e| e.code != "guard.paused");
    if !rs.is_empty() {
        let stop = match r.verdict {
            Verdict::Wait => "the decision waits for the proxy to finish adjusting",
            _ => "the proxy is skipped",
        };
        let _ = writeln!(o, "1. Guard: {}: {stop}.", with_codes(&rs));
        return true;
    }
    let p = &r.inputs.proxy;
    let ladder = match &r.inputs.ladder {
        Some(l) => format!(
            "allowed values: bandwidth {} Mbps; concurrent {} x10k conns",
            list(&l.bandwidth),
            list(&l.concurrent)
        ),
        None => "allowed values unknown".to_string(),
    };
    let _ = writeln!(
        o,
        "1. Guard: passed: the proxy is {} with Scalarable {}; {ladder}.",
        p.status.as_str(),
        p.scalarable
    );
    false
}

fn no_data_words(n: &NoData) -> String {
    match n {
        NoData::NoSeries => "the query returned no series for this proxy".into(),
        NoData::MultipleSeries { count } => {
            format!("{count} series carry this proxy's id (ambiguous, unused)")
        }
        NoData::NotANumber => "the value is NaN".into(),
        NoData::Infinite => "the value is infinite".into(),
        NoData::Negative { value } => format!("the value {value} is negative"),
        NoData::Stale { age_ms } => format!(
            "the newest sample is {} old (stale)",
            format_duration(std::time::Duration::from_millis((*age_ms).max(0) as u64))
        ),
        NoData::QueryError { kind, message } => format!("the query failed ({kind}): {message}"),
    }
}

/// Stage 2: every signal reading with its age, then the data reasons per dimension.
fn data(o: &mut String, r: &DecisionRecord) {
    let _ = writeln!(o, "2. Data:");
    let snap = r.inputs.policy.as_ref();
    let mut named: Vec<String> = r.inputs.signals.keys().cloned().collect();
    if let Some(s) = snap {
        for d in Dim::ALL {
            if let Some(dp) = s.dim(d)
                && !named.contains(&dp.signal)
            {
                named.push(dp.signal.clone());
            }
        }
    }
    if named.is_empty() {
        let _ = writeln!(o, "   no signals were observed.");
    }
    for name in &named {
        let used_by: Vec<&str> = snap
            .map(|s| {
                Dim::ALL
                    .into_iter()
                    .filter(|d| s.dim(*d).is_some_and(|dp| dp.signal == *name))
                    .map(Dim::as_str)
                    .collect()
            })
            .unwrap_or_default();
        let used = if used_by.is_empty() {
            String::new()
        } else {
            format!(" (for {})", used_by.join(" and "))
        };
        let text = match r.inputs.signals.get(name) {
            Some(Reading::Value { value, at }) => {
                format!("{} sampled at {} ({})", num(*value), at, age(r.time, *at))
            }
            Some(Reading::Missing { reason }) => format!("no data: {}", no_data_words(reason)),
            None => "no data: the query returned no series for this proxy".into(),
        };
        let _ = writeln!(o, "   signal `{name}`{used}: {text}");
    }
    for dim in Dim::ALL {
        let rs = reasons(r, 2, Some(dim));
        if !rs.is_empty() {
            let _ = writeln!(o, "   {}: {}", dim.as_str(), with_codes(&rs));
        }
    }
}

/// Stages 3–9 for one dimension.
fn dimension(o: &mut String, r: &DecisionRecord, dim: Dim) {
    let t: &DimTrace = r.inputs.trace(dim);
    let u = unit(dim);
    let _ = writeln!(o, "{} ({u}), currently {}:", title(dim), t.current);
    if !t.managed {
        let _ = writeln!(o, "   not managed by this policy: stays at {}.", t.current);
        return;
    }
    let snap = r.inputs.policy.as_ref();
    let dp = snap.and_then(|s| s.dim(dim));
    let data_reasons = reasons(r, 2, Some(dim));
    if let Some(fb) = data_reasons.iter().find(|e| e.code == "data.fallback") {
        let _ = writeln!(
            o,
            "   3–9. No usable data: the missing-data fallback set the target to {} ({}).",
            t.target, fb.detail
        );
        return;
    }
    let Some(demand) = t.demand else {
        let _ = writeln!(
            o,
            "   3–9. No usable data: not evaluated; holding {} (missing data never scales down).",
            t.current
        );
        return;
    };

    // 3. Raw need.
    let tu = dp.and_then(|d| d.target_utilization).or_else(|| {
        t.raw_need.filter(|n| *n > 0.0).map(|need| match dim {
            Dim::Bandwidth => demand / need,
            Dim::Concurrent => demand / (10_000.0 * need),
        })
    });
    match (t.raw_need, tu) {
        (Some(need), Some(tu)) => {
            let formula = match dim {
                Dim::Bandwidth => format!(
                    "demand {} Mbps / target utilization {}",
                    num(demand),
                    num_tu(tu)
                ),
                Dim::Concurrent => format!(
                    "{} connections / (10,000 × target utilization {})",
                    num(demand),
                    num_tu(tu)
                ),
            };
            let _ = writeln!(o, "   3. Raw need: {formula} = {need:.2} {u}.");
        }
        (Some(need), None) => {
            let _ = writeln!(o, "   3. Raw need: demand {} → {need:.2} {u}.", num(demand));
        }
        (None, _) => {
            let rs = reasons(r, 3, Some(dim));
            let rule = dp.map(|d| format!(" ({})", d.rule)).unwrap_or_default();
            let detail = if rs.is_empty() {
                "no step rule matched".to_string()
            } else {
                with_codes(&rs)
            };
            let _ = writeln!(
                o,
                "   3. Step rule{rule}: demand {}; {detail}.",
                num(demand)
            );
        }
    }

    // 4. Tolerance.
    let rs = reasons(r, 4, Some(dim));
    let band = snap
        .map(|s| {
            format!(
                " (band: {}% up, {}% down)",
                num(s.scale_up.tolerance * 100.0),
                num(s.scale_down.tolerance * 100.0)
            )
        })
        .unwrap_or_default();
    // A saturated reading (stage 2) skips the band and goes up at least max_steps: stages
    // 4 and 5 did not run as usual, and their lines say so.
    let saturated = data_reasons.iter().any(|e| e.code == "data.saturated");
    if rs.is_empty() {
        if t.raw_need.is_some() && saturated {
            let _ = writeln!(
                o,
                "   4. Tolerance{band}: skipped: the reading is saturated (stage 2)."
            );
        } else if t.raw_need.is_some() {
            let _ = writeln!(
                o,
                "   4. Tolerance{band}: did not hold the value; a new value is sought."
            );
        }
    } else {
        let _ = writeln!(
            o,
            "   4. Tolerance{band}: {}: keeping {}.",
            with_codes(&rs),
            t.current
        );
    }

    // 5. Ladder.
    let rs = reasons(r, 5, Some(dim));
    let how = match t.raw_need {
        Some(_) if saturated => format!(
            "the reading is saturated: at least max_steps up from {} and covering the need,",
            t.current
        ),
        Some(_) if reasons(r, 4, Some(dim)).is_empty() => {
            "the cheapest allowed value covering the need is".into()
        }
        Some(_) => "the value kept is".into(),
        None if saturated => format!(
            "the reading is saturated: at least max_steps up from {} and at least the step rule's value,",
            t.current
        ),
        None if t.recommended == t.current => "the step rule kept".into(),
        None => "the step rule moved to".into(),
    };
    let extra = if rs.is_empty() {
        String::new()
    } else {
        format!(" ({})", with_codes(&rs))
    };
    let _ = writeln!(o, "   5. Ladder: {how} {} {u}{extra}.", t.recommended);

    // 6–9.
    stage_line(
        o,
        r,
        dim,
        6,
        "Stabilization",
        t.recommended,
        t.stabilized,
        snap.map(|s| {
            format!(
                " (windows: {} up, {} down)",
                s.scale_up.stabilization, s.scale_down.stabilization
            )
        }),
    );
    stage_line(
        o,
        r,
        dim,
        7,
        "Rate",
        t.stabilized,
        t.rate_limited,
        snap.map(|s| {
            format!(
                " (at most {} step(s) up, {} down)",
                s.scale_up.max_steps, s.scale_down.max_steps
            )
        }),
    );
    let rs = reasons(r, 8, Some(dim));
    let policy_bounds = dp
        .map(|d| format!("; the policy says [{}, {}]", d.min, d.max))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "   8. Bounds: effective [{}, {}]{policy_bounds} → {} {u}{}.",
        t.min,
        t.max,
        t.bounded,
        if rs.is_empty() {
            String::new()
        } else {
            format!(" ({})", with_codes(&rs))
        }
    );
    stage_line(
        o,
        r,
        dim,
        9,
        "Cooldown",
        t.bounded,
        t.target,
        snap.map(|s| {
            format!(
                " ({} up, {} down)",
                s.scale_up.cooldown, s.scale_down.cooldown
            )
        }),
    );
    let _ = writeln!(o, "   → target {} {u} (from {}).", t.target, t.current);
}

fn num_tu(tu: f64) -> String {
    let s = format!("{tu:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[allow(clippy::too_many_arguments)]
fn stage_line(
    o: &mut String,
    r: &DecisionRecord,
    dim: Dim,
    stage: u8,
    name: &str,
    before: u32,
    after: u32,
    settings: Option<String>,
) {
    let rs = reasons(r, stage, Some(dim));
    let settings = settings.unwrap_or_default();
    let u = unit(dim);
    let text = if !rs.is_empty() {
        format!("{} → {after} {u}", with_codes(&rs))
    } else if before != after {
        format!("{before} → {after} {u}")
    } else {
        format!("no effect, {after} {u}")
    };
    let _ = writeln!(o, "   {stage}. {name}{settings}: {text}.");
}

fn result(o: &mut String, r: &DecisionRecord) {
    let rs: Vec<&ReasonEntry> = r.reason_details.iter().filter(|e| e.stage == 10).collect();
    let what = match r.verdict {
        Verdict::Change => format!(
            "one ModifyProxyConfiguration with Bandwidth {} and Concurrent {}, ClientToken {}",
            r.bandwidth_to, r.concurrent_to, r.id
        ),
        Verdict::Hold => format!(
            "no change: keeping {} Mbps and {} x10k conns",
            r.bandwidth_from, r.concurrent_from
        ),
        Verdict::Wait => "no change: waiting for the proxy to leave ADJUSTING".into(),
        Verdict::Skip => "no change: the proxy cannot be scaled now".into(),
    };
    // A change's reasons carry the moves; a hold's only repeat the values.
    let detail = if rs.is_empty() {
        String::new()
    } else if r.verdict == Verdict::Change {
        format!(" ({})", with_codes(&rs))
    } else {
        let codes: Vec<&str> = rs.iter().map(|e| e.reason.as_str()).collect();
        format!(" [{}]", codes.join(", "))
    };
    let _ = writeln!(o, "10. Result: {what}{detail}.");
}

fn outcome(o: &mut String, r: &DecisionRecord) {
    let attempts = |n: u32| {
        if n == 1 {
            "1 attempt".to_string()
        } else {
            format!("{n} attempts")
        }
    };
    let text = match r.outcome {
        Outcome::Held => "held: nothing to send.".to_string(),
        Outcome::DryRun => "dry-run: logged, nothing sent (dry-run mode).".to_string(),
        Outcome::Planned => "planned: logged before the call, no answer recorded yet; \
             the daemon reconciles it at start-up with the same ClientToken."
            .to_string(),
        Outcome::Applied => {
            let rid = r.request_id.as_deref().unwrap_or("(none recorded)");
            let done = match r.completed_at {
                Some(t) => format!(
                    "; the proxy was RUNNING again at {t} ({} after the decision)",
                    format_duration(t.since(r.time))
                ),
                None => "; completion (proxy RUNNING again) not recorded yet".to_string(),
            };
            format!(
                "applied: RequestId {rid} after {}{done}.",
                attempts(r.attempts)
            )
        }
        Outcome::Failed => {
            let code = r.error_code.as_deref().unwrap_or("no error code");
            let msg = r
                .error_message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            let rid = r
                .request_id
                .as_deref()
                .map(|id| format!(", RequestId {id}"))
                .unwrap_or_default();
            format!("failed: {code}{msg}{rid}, after {}.", attempts(r.attempts))
        }
        Outcome::Skipped => "skipped: nothing sent.".to_string(),
    };
    let _ = writeln!(o, "Outcome: {text}");
    if let Some(n) = &r.note {
        let _ = writeln!(o, "Note: {n}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::{ControllerState, ProxyStatus, decide, fixtures};
    use crate::policy::Mode;
    use crate::store::record::{OutcomeUpdate, RecordContext};

    const T0: i64 = 1_795_939_200;

    struct Case {
        name: &'static str,
        bandwidth: u32,
        concurrent: u32,
        status: ProxyStatus,
        /// (bandwidth Mbps, connections), None = no data at all.
        obs: Option<(f64, f64)>,
        mode: Mode,
        state: ControllerState,
        /// Changes to the fixture policy.
        tweak: fn(&mut crate::policy::Policy),
        /// Answer applied after logging (outcome, update, completion after secs).
        answer: Option<(Outcome, OutcomeUpdate, Option<i64>)>,
        want: &'static [&'static str],
        not: &'static [&'static str],
    }

    fn record(c: &Case) -> DecisionRecord {
        let now = Timestamp::from_secs(T0);
        let mut policy = fixtures::policy();
        // The readings above the capacity (100 Mbps on 10) would be saturated: these
        // cases explain the other stages (one case turns saturation back on).
        for dim in [&mut policy.bandwidth, &mut policy.concurrent]
            .into_iter()
            .flatten()
        {
            dim.saturation = f64::INFINITY;
        }
        (c.tweak)(&mut policy);
        let mut proxy = fixtures::proxy(c.bandwidth, c.concurrent);
        proxy.status = c.status.clone();
        let ladder = fixtures::ladder();
        let obs = match c.obs {
            Some((b, k)) => fixtures::observe(b, k, now - Duration::from_secs(15)),
            None => Default::default(),
        };
        let d = decide(&policy, &proxy, Some(&ladder), &obs, &c.state, now);
        let ctx = RecordContext {
            mode: c.mode,
            outcome: Outcome::initial(d.verdict, c.mode),
            proxy: &proxy,
            ladder: Some(&ladder),
            observation: &obs,
            policy: &policy,
            note: None,
        };
        let mut r = DecisionRecord::from_decision(&d, &ctx);
        if let Some((o, u, done)) = &c.answer {
            r.apply_outcome(*o, u);
            r.completed_at = done.map(|s| Timestamp::from_secs(T0 + s));
        }
        r
    }

    fn base() -> Case {
        Case {
            name: "",
            bandwidth: 10,
            concurrent: 2,
            status: ProxyStatus::Running,
            obs: Some((100.0, 30_000.0)),
            mode: Mode::Live,
            state: ControllerState::default(),
            tweak: |_| {},
            answer: None,
            want: &[],
            not: &[],
        }
    }

    #[test]
    fn explains_each_kind_of_decision() {
        let mut cooled = ControllerState::default();
        cooled.bandwidth.last_up = Some(Timestamp::from_secs(T0 - 10));
        let cases = vec![
            Case {
                name: "scale up, applied and completed",
                answer: Some((
                    Outcome::Applied,
                    OutcomeUpdate {
                        request_id: Some("req-123".into()),
                        attempts: 2,
                        ..Default::default()
                    },
                    Some(45),
                )),
                want: &[
                    "Decision d-1795939200000-link-test0001-0000",
                    "1. Guard: passed: the proxy is RUNNING with Scalarable 1; allowed values: bandwidth 10, 20, 50, 100, 200, 500, 1000 Mbps",
                    "signal `bandwidth` (for bandwidth): 100 sampled at 2026-11-29T07:59:45Z (15s old)",
                    "signal `connections` (for concurrent): 30000 sampled at",
                    "3. Raw need: demand 100 Mbps / target utilization 0.7 = 142.86 Mbps.",
                    "3. Raw need: 30000 connections / (10,000 × target utilization 0.7) = 4.29 x10k conns.",
                    "5. Ladder: the cheapest allowed value covering the need is 200 Mbps.",
                    "7. Rate (at most 2 step(s) up, 1 down): ",
                    "[bandwidth:rate.max_steps]",
                    "→ target 50 Mbps (from 10).",
                    "10. Result: one ModifyProxyConfiguration with Bandwidth 50 and Concurrent 5, ClientToken d-1795939200000-link-test0001-0000",
                    "[bandwidth:scale.up]",
                    "Outcome: applied: RequestId req-123 after 2 attempts; the proxy was RUNNING again at 2026-11-29T08:00:45Z (45s after the decision).",
                ],
                not: &["not evaluated", "No usable data"],
                ..base()
            },
            Case {
                name: "within tolerance, held",
                bandwidth: 100,
                concurrent: 5,
                obs: Some((72.0, 33_000.0)),
                want: &[
                    "4. Tolerance (band: 5% up, 10% down): need 102.86 is within 5% above 100 [bandwidth:tolerance.within]: keeping 100.",
                    "5. Ladder: the value kept is 100 Mbps.",
                    "10. Result: no change: keeping 100 Mbps and 5 x10k conns [hold.no_change].",
                    "Outcome: held: nothing to send.",
                ],
                not: &["ModifyProxyConfiguration"],
                ..base()
            },
            Case {
                name: "no data: holds and never scales down",
                bandwidth: 200,
                concurrent: 10,
                obs: None,
                want: &[
                    "signal `bandwidth` (for bandwidth): no data: the query returned no series for this proxy",
                    "[bandwidth:data.missing]",
                    "3–9. No usable data: not evaluated; holding 200 (missing data never scales down).",
                    "Outcome: held",
                ],
                not: &["Raw need"],
                ..base()
            },
            Case {
                name: "guard: adjusting waits",
                status: ProxyStatus::Adjusting,
                want: &[
                    "[guard.adjusting]: the decision waits for the proxy to finish adjusting.",
                    "2–9. Not evaluated: the guard stopped the decision",
                    "10. Result: no change: waiting for the proxy to leave ADJUSTING",
                ],
                not: &["2. Data", "Raw need"],
                ..base()
            },
            Case {
                name: "cooldown holds a scale-up",
                bandwidth: 50,
                concurrent: 5,
                obs: Some((100.0, 20_000.0)),
                state: cooled,
                want: &[
                    "9. Cooldown (1m up, 10m down): ",
                    "[bandwidth:cooldown.up] → 50 Mbps.",
                    "→ target 50 Mbps (from 50).",
                ],
                ..base()
            },
            Case {
                name: "dry run",
                mode: Mode::DryRun,
                want: &[
                    "policy:  web (dry-run mode)",
                    "Outcome: dry-run: logged, nothing sent",
                ],
                ..base()
            },
            Case {
                name: "failed with an error code",
                answer: Some((
                    Outcome::Failed,
                    OutcomeUpdate {
                        request_id: Some("req-9".into()),
                        error_code: Some("FailedOperation.NotSupportScalar".into()),
                        error_message: Some("proxy does not support scaling".into()),
                        attempts: 1,
                    },
                    None,
                )),
                want: &[
                    "Outcome: failed: FailedOperation.NotSupportScalar: proxy does not support scaling, RequestId req-9, after 1 attempt.",
                ],
                ..base()
            },
            Case {
                name: "missing data falls back upward",
                obs: None,
                tweak: |p| {
                    p.on_missing_data = crate::policy::MissingData {
                        action: crate::policy::MissingAction::Fallback,
                        after: 1,
                        bandwidth: Some(100),
                        concurrent: None,
                    }
                },
                want: &[
                    "[bandwidth:data.fallback]",
                    "3–9. No usable data: the missing-data fallback set the target to 100 (",
                    "→ 100 Mbps",
                ],
                not: &["Raw need: demand"],
                ..base()
            },
            Case {
                name: "step rule",
                bandwidth: 100,
                concurrent: 5,
                obs: Some((90.0, 30_000.0)),
                tweak: |p| {
                    if let Some(d) = p.bandwidth.as_mut() {
                        d.rule = crate::policy::Rule::Steps(vec![crate::policy::StepRule {
                            above: Some(0.8),
                            below: None,
                            change: 1,
                        }]);
                    }
                },
                want: &[
                    "3. Step rule (step rules: >= 0.8 → +1): demand 90; ",
                    "[bandwidth:step.rule]",
                    "5. Ladder: the step rule moved to 200 Mbps.",
                    "→ target 200 Mbps (from 100).",
                ],
                not: &[
                    "4. Tolerance (band: 5% up, 10% down): did not hold the value; a new value is sought.\n   5. Ladder: the step rule",
                ],
                ..base()
            },
            Case {
                name: "a saturated reading goes up max_steps at once",
                tweak: |p| {
                    if let Some(b) = p.bandwidth.as_mut() {
                        b.saturation = crate::policy::DEFAULT_SATURATION;
                    }
                },
                obs: Some((9.8, 14_000.0)),
                want: &[
                    "demand reads 98% of the capacity in effect (10 Mbps): the cap hides the real demand, so going up at least 2 ladder step(s) at once, to 50",
                    "4. Tolerance (band: 5% up, 10% down): skipped: the reading is saturated (stage 2).",
                    "5. Ladder: the reading is saturated: at least max_steps up from 10 and covering the need, 50 Mbps.",
                    "→ target 50 Mbps (from 10).",
                ],
                // The need (14) alone is covered by 20: 50 is the saturated jump.
                not: &["the cheapest allowed value covering the need is 50"],
                ..base()
            },
            Case {
                name: "planned, no answer yet",
                want: &["Outcome: planned: logged before the call, no answer recorded yet"],
                ..base()
            },
        ];
        for c in &cases {
            let text = explain(&record(c));
            for w in c.want {
                assert!(text.contains(w), "{}: missing {w:?} in:\n{text}", c.name);
            }
            for n in c.not {
                assert!(
                    !text.contains(n),
                    "{}: unexpected {n:?} in:\n{text}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn stale_and_failed_queries_are_explained_in_words() {
        let cases = [
            (
                NoData::Stale { age_ms: 420_000 },
                "the newest sample is 7m old (stale)",
            ),
            (
                NoData::MultipleSeries { count: 3 },
                "3 series carry this proxy's id (ambiguous, unused)",
            ),
            (
                NoData::QueryError {
                    kind: "timeout".into(),
                    message: "after 10s".into(),
                },
                "the query failed (timeout): after 10s",
            ),
            (
                NoData::Negative { value: -1.5 },
                "the value -1.5 is negative",
            ),
        ];
        for (nd, want) in cases {
            assert_eq!(no_data_words(&nd), want);
        }
    }
}
