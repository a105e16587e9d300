//! Prometheus as the metric source.
//!
//! - The daemon calls [`Prometheus::observe`]: one request per policy signal per
//!   evaluation (never one per proxy), the result split by the signal's `proxy_label`,
//!   every value classified by [`Reading::classify`] so that no NaN, infinite, negative or
//!   stale value reaches the decision core as a number.
//! - `simulate --prometheus` calls [`Prometheus::fetch_range`]: the same queries as range
//!   queries at each policy's evaluation step, chunked below Prometheus's 11,000-point
//!   limit, fetched concurrently with a bound, into a [`Trace`].
//! - `validate` calls [`check_policy_queries`].
//!
//! # What "a sample" of a signal is, and how `max_age` is applied
//!
//! A PromQL instant query stamps every result with the *evaluation* time, and
//! `timestamp(q)` reaches the raw sample time only when `q` is a bare selector (for an
//! aggregation such as `max by (channel_id) (...)` it returns the evaluation time too);
//! Prometheus 2.42 has no per-query `lookback_delta` either (the parameter is ignored,
//! checked against the real server). So the engine defines the samples of a signal as the
//! values of its query at evaluation times, exactly what a range query, and therefore
//! `simulate --prometheus` and a CSV export of it, contains. At `now` the daemon evaluates
//! the query over a short window ending at `now`, on the policy's evaluation step, and
//! applies the CSV rule to it: the latest value not after `now`, and no data when that
//! value is older than `max_age` ([`NoData::Stale`], with its age). The window reaches
//! back about twice `max_age` so a value that just became too old is reported as stale,
//! not as absent ([`observe_window`]). The daemon thereby
//! reads exactly what the simulation reads from the trace of the same query at the same
//! step. Freshness of the raw data *inside* a query is bounded by the query itself (its
//! range selectors, e.g. `max_over_time(x[2m])`, and Prometheus's 5-minute lookback):
//! write such a window into the query when raw samples must be younger than 5 minutes.

mod prometheus;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

pub use prometheus::{
    Prometheus, QueryProblem, check_policy_queries, check_policy_queries_blocking, decode_answer,
};

use crate::core::{NoData, Observation, Reading};
use crate::policy::Schedule;
use crate::time::{Timestamp, format_duration};
use crate::trace::Trace;

/// Prometheus refuses a range query with more than 11,000 steps per series
/// (`(end - start) / step > 11000`). Chunks stay one point below the limit.
pub const MAX_POINTS_PER_REQUEST: i64 = 11_000;

/// The observation window of the daemon holds at most this many evaluation points per
/// series (the step widens when `max_age / step` would exceed it).
pub const MAX_WINDOW_POINTS: i64 = 30;

/// How the client talks to Prometheus.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientOptions {
    /// Timeout of one HTTP request (config `[prometheus] timeout`, default 10s). Also sent
    /// to Prometheus as the query's evaluation timeout.
    pub timeout: Duration,
    /// Retries after a transient failure (connection error, timeout, HTTP 5xx, Prometheus
    /// `timeout`/`unavailable`/`internal`). A rejected query (`bad_data`) is never retried.
    pub retries: u32,
    /// Delay before the first retry; doubles on each further retry.
    pub backoff: Duration,
    /// Upper bound on one signal's query including all retries. A slow or unreachable
    /// Prometheus costs a policy evaluation at most this long, never more.
    pub deadline: Duration,
    /// Range requests in flight at once in [`Prometheus::fetch_range`].
    pub concurrency: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions::with_timeout(Duration::from_secs(10))
    }
}

impl ClientOptions {
    /// Defaults derived from a request timeout: 2 retries, 200ms backoff, a deadline of
    /// twice the timeout, 4 range requests in flight.
    pub fn with_timeout(timeout: Duration) -> ClientOptions {
        ClientOptions {
            timeout,
            retries: 2,
            backoff: Duration::from_millis(200),
            deadline: timeout * 2,
            concurrency: 4,
        }
    }
}

/// Why talking to Prometheus failed. [`MetricsError::kind`] is the short code stored in
/// [`NoData::QueryError`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("invalid Prometheus URL `{url}`: {message}")]
    InvalidUrl { url: String, message: String },
    #[error("cannot connect to Prometheus at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("Prometheus did not answer within {}", format_duration(*after))]
    Timeout { after: Duration },
    #[error("Prometheus answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// The query was rejected (`bad_data`): PromQL syntax or a bad parameter. The message
    /// is Prometheus's own (e.g. `1:18: parse error: unclosed left parenthesis`).
    #[error("Prometheus rejected the query: {message}")]
    BadQuery { message: String },
    /// Prometheus accepted the query but failed it (`execution`, `timeout`, ...).
    #[error("Prometheus failed the query ({error_type}): {message}")]
    Prometheus { error_type: String, message: String },
    #[error("unexpected answer from Prometheus: {message}")]
    Decode { message: String },
    /// A 3xx answer: not followed (credentials in the URL never go elsewhere).
    #[error(
        "Prometheus at {url} answered HTTP {status} redirecting to {location}; redirects are not followed: give the server's own URL"
    )]
    Redirect {
        url: String,
        status: u16,
        location: String,
    },
    /// An answer longer than the client reads.
    #[error(
        "the answer of Prometheus at {url} to {endpoint} is larger than {}; refused (narrow the query or its range)",
        crate::net::format_bytes(*limit)
    )]
    TooLarge {
        url: String,
        endpoint: String,
        limit: usize,
    },
    /// Two policies give one signal name two different queries; a trace keyed by signal
    /// name cannot hold both.
    #[error(
        "signal `{signal}` has different queries in policies `{first}` and `{second}`; give one of them another name"
    )]
    SignalConflict {
        signal: String,
        first: String,
        second: String,
    },
}

impl MetricsError {
    /// Short, stable code: `invalid_url`, `connect`, `timeout`, `http`, `bad_query`,
    /// `prometheus`, `decode`, `redirect`, `too_large`, `signal_conflict`.
    pub fn kind(&self) -> &'static str {
        match self {
            MetricsError::InvalidUrl { .. } => "invalid_url",
            MetricsError::Connect { .. } => "connect",
            MetricsError::Timeout { .. } => "timeout",
            MetricsError::Http { .. } => "http",
            MetricsError::BadQuery { .. } => "bad_query",
            MetricsError::Prometheus { .. } => "prometheus",
            MetricsError::Decode { .. } => "decode",
            MetricsError::Redirect { .. } => "redirect",
            MetricsError::TooLarge { .. } => "too_large",
            MetricsError::SignalConflict { .. } => "signal_conflict",
        }
    }

    /// Worth retrying: the same request may succeed a moment later.
    pub fn is_transient(&self) -> bool {
        match self {
            MetricsError::Connect { .. } | MetricsError::Timeout { .. } => true,
            MetricsError::Http { status, .. } => *status >= 500 || *status == 429,
            MetricsError::Prometheus { error_type, .. } => {
                matches!(
                    error_type.as_str(),
                    "timeout" | "canceled" | "unavailable" | "internal"
                )
            }
            _ => false,
        }
    }

    /// True when the cause is the environment (Prometheus unreachable or failing), not the
    /// policy: commands exit 2 for these.
    pub fn is_environment(&self) -> bool {
        self.is_transient()
            || matches!(
                self,
                MetricsError::Http { .. } | MetricsError::Decode { .. }
            )
    }

    /// The no-data reason every proxy of a failed signal gets.
    pub fn to_no_data(&self) -> NoData {
        NoData::QueryError {
            kind: self.kind().to_string(),
            message: self.to_string(),
        }
    }
}

/// A signal whose query failed at one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalError {
    pub policy: String,
    pub signal: String,
    pub error: MetricsError,
}

/// The outcome of one evaluation of one policy's signals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyObservation {
    pub time: Timestamp,
    /// Every signal of the policy, in name order.
    pub signals: Vec<String>,
    /// Readings of the signals that were queried successfully, for every proxy that
    /// appeared in their results.
    pub per_proxy: HashMap<String, Observation>,
    /// Signals whose query failed (every proxy gets [`NoData::QueryError`] for them).
    pub errors: Vec<SignalError>,
}

impl PolicyObservation {
    /// The observation of one proxy: a reading for every signal of the policy; a signal
    /// without a series for this proxy is [`NoData::NoSeries`], a failed signal is
    /// [`NoData::QueryError`].
    pub fn for_proxy(&self, id: &str) -> Observation {
        let mut obs = self.per_proxy.get(id).cloned().unwrap_or_default();
        for name in &self.signals {
            if let Some(err) = self.errors.iter().find(|e| &e.signal == name) {
                obs.signals.insert(
                    name.clone(),
                    Reading::Missing {
                        reason: err.error.to_no_data(),
                    },
                );
            } else {
                obs.signals.entry(name.clone()).or_insert(Reading::Missing {
                    reason: NoData::NoSeries,
                });
            }
        }
        obs
    }

    /// [`Self::for_proxy`] for each of `ids`.
    pub fn for_proxies(&self, ids: &[String]) -> HashMap<String, Observation> {
        ids.iter()
            .map(|id| (id.clone(), self.for_proxy(id)))
            .collect()
    }
}

/// One series of a query result: the value of the proxy label (None when the series does
/// not carry it) and its samples, ascending, `(Unix ms, value)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LabeledSeries {
    pub proxy: Option<String>,
    pub samples: Vec<(i64, f64)>,
}

/// Splits a windowed result into one reading per proxy at `now`: for each proxy, the
/// newest evaluation not after `now` that produced a value; if several series of that
/// proxy have a value at that evaluation, [`NoData::MultipleSeries`]; otherwise the value,
/// classified (NaN, Inf, negative, older than `max_age_ms`). Series without the proxy
/// label are ignored (validation reports them).
pub fn readings_at(
    series: &[LabeledSeries],
    now: Timestamp,
    max_age_ms: i64,
) -> BTreeMap<String, Reading> {
    // proxy -> (newest time, value there, series with a value there)
    let mut latest: BTreeMap<&str, (i64, f64, usize)> = BTreeMap::new();
    for s in series {
        let Some(proxy) = s.proxy.as_deref() else {
            continue;
        };
        let idx = s.samples.partition_point(|&(t, _)| t <= now.millis());
        if idx == 0 {
            continue;
        }
        let (t, v) = s.samples[idx - 1];
        latest
            .entry(proxy)
            .and_modify(|e| {
                if t > e.0 {
                    *e = (t, v, 1);
                } else if t == e.0 {
                    e.2 += 1;
                }
            })
            .or_insert((t, v, 1));
    }
    latest
        .into_iter()
        .map(|(proxy, (t, v, count))| {
            let reading = if count > 1 {
                Reading::Missing {
                    reason: NoData::MultipleSeries { count },
                }
            } else {
                Reading::classify(v, Timestamp(t), now, max_age_ms)
            };
            (proxy.to_string(), reading)
        })
        .collect()
}

/// A range of evaluation times: `start`, `start + step`, ..., `end` (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeWindow {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl RangeWindow {
    pub fn points(&self) -> i64 {
        (self.end - self.start) / self.step + 1
    }
}

/// The range the daemon warms the seasonal memory from at start-up (issue 13,
/// `[predictive]`): one point per whole hour of the `lookback` before `now`, evaluated at
/// the hour's last second, so that [`hourly_high_query`] there is that hour's highest
/// value. The current, partial hour is left to the live evaluations. Bounded: 24 points a
/// day (at most 672 for the longest lookback). None when the lookback is under an hour.
pub fn hourly_highs_window(lookback: Duration, now: Timestamp) -> Option<RangeWindow> {
    let now_s = now.millis().div_euclid(1000);
    let this_hour = now_s - now_s.rem_euclid(3600);
    let hours = i64::try_from(lookback.as_secs() / 3600).unwrap_or(i64::MAX);
    if hours == 0 {
        return None;
    }
    let first = this_hour.saturating_sub(hours.saturating_mul(3600));
    Some(RangeWindow {
        start: first + 3599,
        end: this_hour - 1,
        step: 3600,
    })
}

/// `query`'s highest value over the hour before each evaluation, sampled on the policy's
/// evaluation `step` (a subquery): at the hour's last second, the samples from the hour's
/// first second on.
pub fn hourly_high_query(query: &str, step: Duration) -> String {
    format!("max_over_time(({query})[1h:{}s])", whole_secs(step))
}

/// The start of the hour a point of [`hourly_highs_window`] (at `t_ms`) stands for.
pub fn hour_of_point(t_ms: i64) -> Timestamp {
    Timestamp(t_ms - 3_599_000)
}

/// Whole seconds, at least 1: range queries take integer start/end (the client crate's
/// API), so evaluation steps are whole seconds.
fn whole_secs(d: Duration) -> i64 {
    i64::try_from(d.as_millis().div_ceil(1000))
        .unwrap_or(i64::MAX)
        .max(1)
}

/// The window the daemon queries for one signal at `now`: ending at `now` (whole
/// seconds), on the policy's step, reaching back about twice `max_age` so that a value
/// that has just become too old is still seen and reported as [`NoData::Stale`] with its
/// age (beyond the window a proxy simply has no series). At most [`MAX_WINDOW_POINTS`]
/// points: the reach shrinks first (never below `max_age` plus one step), then the step
/// widens.
pub fn observe_window(step: Duration, max_age: Duration, now: Timestamp) -> RangeWindow {
    let mut step = whole_secs(step);
    let max_age = i64::try_from(max_age.as_millis() / 1000).unwrap_or(i64::MAX);
    let cap = MAX_WINDOW_POINTS - 1; // intervals, not points
    if max_age / step + 1 > cap {
        step = max_age / (cap - 1) + 1;
    }
    // n * step > max_age always; up to 2 * max_age + step when the cap allows.
    let n = (2 * max_age / step + 1).min(cap).max(max_age / step + 1);
    let end = now.secs();
    RangeWindow {
        start: end - n * step,
        end,
        step,
    }
}

/// The evaluation times of a policy: every `t` (Unix seconds) with
/// `t ≡ offset (mod step)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub step: i64,
    pub offset: i64,
}

/// The grid on which a policy's signals are sampled for the simulation (and the step of
/// the daemon's window). An interval policy: its interval (whole seconds, at least 1) on
/// multiples of it since the epoch, the times the simulation evaluates at. A cron policy:
/// step = the greatest common divisor of 60 s and every gap between consecutive fire
/// times in `[start, end]`, anchored at the first fire time; so every fire time is a grid
/// point (the simulation reads the exact value of each evaluation) and the step is never
/// more than 60 s (whole-minute crons: 60 s; `*/15 * * * * *`: 15 s). A cron that fires
/// at most once in the range gets 60 s. At most `max_fires` fire times are examined.
pub fn evaluation_grid(
    schedule: &Schedule,
    start: Timestamp,
    end: Timestamp,
    max_fires: usize,
) -> Grid {
    match schedule {
        Schedule::Interval(d) => Grid {
            step: whole_secs(*d),
            offset: 0,
        },
        Schedule::Cron(spec) => {
            let mut step: i64 = 60;
            let mut first: Option<i64> = None;
            let mut prev: Option<i64> = None;
            let from = (start - Duration::from_millis(1)).to_datetime();
            for fire in spec.schedule.after(&from).take(max_fires) {
                let t = fire.timestamp();
                if t * 1000 > end.millis() {
                    break;
                }
                first.get_or_insert(t);
                if let Some(p) = prev {
                    step = gcd(step, t - p);
                }
                prev = Some(t);
                if step == 1 {
                    break;
                }
            }
            Grid {
                step,
                offset: first.unwrap_or(0).rem_euclid(step),
            }
        }
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Splits the grid points `t ≡ grid.offset (mod grid.step)` inside `[start, end]` (Unix
/// seconds) into windows of at most `max_points` points each. Consecutive windows neither
/// overlap nor leave a grid point out.
pub fn range_chunks(start: i64, end: i64, grid: Grid, max_points: i64) -> Vec<RangeWindow> {
    let step = grid.step.max(1);
    let max_points = max_points.max(1);
    let first = start + (grid.offset - start).rem_euclid(step);
    let last = end - (end - grid.offset).rem_euclid(step);
    let mut out = Vec::new();
    let mut s = first;
    while s <= last {
        let e = (s + (max_points - 1) * step).min(last);
        out.push(RangeWindow {
            start: s,
            end: e,
            step,
        });
        s = e + step;
    }
    out
}

/// A `progress` callback for [`Prometheus::fetch_range`]: a bar of requests done on
/// stderr when stderr is a terminal, nothing otherwise. Clears itself when all are done.
pub fn terminal_progress(message: &'static str) -> impl Fn(usize, usize) {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} requests")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(message);
    move |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        if done >= total {
            bar.finish_and_clear();
        }
    }
}

/// The trace as a metrics CSV (DESIGN.md): header `timestamp,proxy_id,signal,value`,
/// Unix seconds (with a fraction when not whole), values as Prometheus writes them
/// (`NaN`, `+Inf`, `-Inf`), one row per sample, grouped by proxy and signal, in time
/// order. Reading it back gives the same trace.
pub fn trace_to_csv(trace: &Trace) -> String {
    let mut out = String::from("timestamp,proxy_id,signal,value\n");
    for ((proxy, signal), series) in &trace.series {
        let proxy = csv_field(proxy);
        let signal = csv_field(signal);
        for (t, v) in series.times.iter().zip(&series.values) {
            out.push_str(&format!(
                "{},{proxy},{signal},{}\n",
                format_secs(*t),
                FloatText(*v)
            ));
        }
    }
    out
}

fn format_secs(ms: i64) -> String {
    if ms % 1000 == 0 {
        (ms / 1000).to_string()
    } else {
        let sign = if ms < 0 { "-" } else { "" };
        let a = ms.unsigned_abs();
        format!("{sign}{}.{:03}", a / 1000, a % 1000)
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A float in Prometheus's spelling; finite values in Rust's shortest round-trip form.
pub struct FloatText(pub f64);

impl fmt::Display for FloatText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v == f64::INFINITY {
            f.write_str("+Inf")
        } else if v == f64::NEG_INFINITY {
            f.write_str("-Inf")
        } else {
            write!(f, "{v}")
        }
    }
}

/// Parses a sample value as Prometheus writes it (`NaN`, `+Inf`, `-Inf`, decimals).
pub fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::CronSpec;
    use std::str::FromStr;

    fn series(proxy: &str, samples: &[(i64, f64)]) -> LabeledSeries {
        LabeledSeries {
            proxy: Some(proxy.into()),
            samples: samples.to_vec(),
        }
    }

    #[test]
    fn readings_classify_every_case() {
        let now = Timestamp::from_secs(1000);
        let max_age = 120_000;
        let input = vec![
            series("ok", &[(900_000, 1.0), (1_000_000, 5.0)]),
            series("nan", &[(1_000_000, f64::NAN)]),
            series("inf", &[(1_000_000, f64::INFINITY)]),
            series("neg", &[(1_000_000, -2.0)]),
            series("stale", &[(700_000, 3.0)]),
            series("dup", &[(1_000_000, 1.0)]),
            series("dup", &[(1_000_000, 2.0)]),
            // An older second series does not make the newest value ambiguous.
            series("old-dup", &[(1_000_000, 7.0)]),
            series("old-dup", &[(940_000, 8.0)]),
            // Samples after `now` are never used.
            series("future", &[(1_030_000, 9.0)]),
            LabeledSeries {
                proxy: None,
                samples: vec![(1_000_000, 1.0)],
            },
        ];
        let got = readings_at(&input, now, max_age);
        let value = |v, t| Reading::Value {
            value: v,
            at: Timestamp(t),
        };
        let missing = |reason| Reading::Missing { reason };
        assert_eq!(got["ok"], value(5.0, 1_000_000));
        assert_eq!(got["nan"], missing(NoData::NotANumber));
        assert_eq!(got["inf"], missing(NoData::Infinite));
        assert_eq!(got["neg"], missing(NoData::Negative { value: -2.0 }));
        assert_eq!(got["stale"], missing(NoData::Stale { age_ms: 300_000 }));
        assert_eq!(got["dup"], missing(NoData::MultipleSeries { count: 2 }));
        assert_eq!(got["old-dup"], value(7.0, 1_000_000));
        assert!(!got.contains_key("future"));
        assert_eq!(got.len(), 7);
    }

    #[test]
    fn absent_and_failed_signals_fill_for_proxy() {
        let mut per_proxy = HashMap::new();
        let mut obs = Observation::default();
        obs.signals.insert(
            "bandwidth".into(),
            Reading::Value {
                value: 1.0,
                at: Timestamp(0),
            },
        );
        per_proxy.insert("a".to_string(), obs);
        let po = PolicyObservation {
            time: Timestamp(0),
            signals: vec!["bandwidth".into(), "connections".into(), "x".into()],
            per_proxy,
            errors: vec![SignalError {
                policy: "p".into(),
                signal: "x".into(),
                error: MetricsError::Timeout {
                    after: Duration::from_secs(1),
                },
            }],
        };
        let a = po.for_proxy("a");
        assert_eq!(a.signals["bandwidth"].value(), Some(1.0));
        assert_eq!(
            a.signals["connections"],
            Reading::Missing {
                reason: NoData::NoSeries
            }
        );
        match &a.signals["x"] {
            Reading::Missing {
                reason: NoData::QueryError { kind, message },
            } => {
                assert_eq!(kind, "timeout");
                assert_eq!(message, "Prometheus did not answer within 1s");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(po.for_proxy("b").signals.len(), 3);
        let all = po.for_proxies(&["a".into(), "b".into()]);
        assert_eq!((all["a"].clone(), all.len()), (a, 2));
        assert!(
            po.for_proxy("b")
                .signals
                .values()
                .all(|r| r.value().is_none())
        );
    }

    #[test]
    fn chunks_cover_the_grid_exactly_once() {
        let cases = [
            (0, 100, 10, 0, 3),
            (5, 95, 10, 0, 4),
            (0, 0, 10, 0, 5),
            (1, 9, 10, 0, 5),
            (-35, 35, 7, 0, 2),
            (0, 100, 10, 7, 3),
            (8, 100, 10, 7, 4),
            (1_700_000_000, 1_700_000_000 + 86_400 * 8, 60, 0, 11_000),
            (1_700_000_000, 1_700_000_000 + 86_400, 60, 7, 11_000),
        ];
        for (start, end, step, offset, max) in cases {
            let chunks = range_chunks(start, end, Grid { step, offset }, max);
            let mut got = Vec::new();
            for c in &chunks {
                assert!(c.points() <= max, "{c:?}");
                assert!((c.end - c.start) / c.step <= MAX_POINTS_PER_REQUEST);
                let mut t = c.start;
                while t <= c.end {
                    got.push(t);
                    t += c.step;
                }
            }
            let want: Vec<i64> = (start..=end)
                .filter(|t| t.rem_euclid(step) == offset)
                .collect();
            assert_eq!(
                got, want,
                "start {start} end {end} step {step}+{offset} max {max}"
            );
        }
        let grid = Grid {
            step: 60,
            offset: 0,
        };
        assert_eq!(range_chunks(0, 86_400 * 8, grid, 11_000).len(), 2);
    }

    #[test]
    fn hourly_highs_cover_whole_hours_of_the_lookback() {
        let h = 3_600_000i64;
        let day0 = 1_788_739_200_000i64; // 2026-09-07T00:00:00Z
        // (lookback, now, window)
        let cases = [
            // 2 h back from 10:30: hours 08 and 09, evaluated at 08:59:59 and 09:59:59.
            (
                Duration::from_secs(7_200),
                Timestamp(day0 + 10 * h + h / 2),
                Some((day0 / 1000 + 8 * 3600 + 3599, day0 / 1000 + 10 * 3600 - 1)),
            ),
            // Exactly on the hour: the hour that just ended is the last one.
            (
                Duration::from_secs(3_600),
                Timestamp(day0 + 10 * h),
                Some((day0 / 1000 + 9 * 3600 + 3599, day0 / 1000 + 9 * 3600 + 3599)),
            ),
            (Duration::from_secs(3_599), Timestamp(day0 + 10 * h), None),
        ];
        for (lookback, now, want) in cases {
            let got = hourly_highs_window(lookback, now);
            assert_eq!(
                got.map(|w| (w.start, w.end)),
                want,
                "{lookback:?} at {now:?}"
            );
            if let Some(w) = got {
                assert_eq!(w.step, 3600);
                // Each point stands for the hour it closes.
                let first = hour_of_point(w.start * 1000);
                assert_eq!(first.millis() % h, 0);
                assert_eq!(w.points() as u64, lookback.as_secs() / 3600);
            }
        }
        // A week: 168 points, one request (far below the 11,000-point limit).
        let w = hourly_highs_window(Duration::from_secs(7 * 86_400), Timestamp(day0)).unwrap();
        assert_eq!(w.points(), 168);
        assert_eq!(
            hourly_high_query("sum by (p) (rate(x[1m]))", Duration::from_millis(30_500)),
            "max_over_time((sum by (p) (rate(x[1m])))[1h:31s])"
        );
    }

    #[test]
    fn window_reaches_past_max_age() {
        let now = Timestamp::from_millis(1_000_000_500);
        let w = observe_window(Duration::from_secs(30), Duration::from_secs(300), now);
        assert_eq!(
            w,
            RangeWindow {
                start: 1_000_000 - 630,
                end: 1_000_000,
                step: 30
            }
        );
        let w = observe_window(Duration::from_secs(10), Duration::from_secs(250), now);
        assert_eq!((w.end - w.start, w.step), (290, 10));
        let w = observe_window(Duration::from_secs(1), Duration::from_secs(3600), now);
        assert!(w.points() <= MAX_WINDOW_POINTS, "{w:?}");
        assert!(w.end - w.start > 3600);
        let w = observe_window(Duration::from_secs(600), Duration::from_secs(300), now);
        assert_eq!((w.end - w.start, w.step), (1200, 600));
    }

    #[test]
    fn cron_steps_put_every_fire_time_on_the_grid() {
        let spec = |e: &str| {
            Schedule::Cron(CronSpec {
                expr: e.into(),
                schedule: cron::Schedule::from_str(e).unwrap(),
            })
        };
        let start = Timestamp::from_secs(1_790_000_000);
        let end = start + Duration::from_secs(86_400);
        let end2 = start + Duration::from_secs(3 * 86_400);
        let cases = [
            ("0 */5 * * * *", end, 60),
            ("*/30 * * * * *", end, 30),
            ("*/45 * * * * *", end, 15),
            ("7 0 9,17 * * *", end2, 60),
            ("0 0 9 * * * 2001", end, 60),
        ];
        for (expr, end, want) in cases {
            let grid = evaluation_grid(&spec(expr), start, end, 100_000);
            assert_eq!(grid.step, want, "{expr}");
            let Schedule::Cron(c) = spec(expr) else {
                unreachable!()
            };
            let from = (start - Duration::from_millis(1)).to_datetime();
            for fire in c
                .schedule
                .after(&from)
                .take_while(|f| f.timestamp() <= end.secs())
            {
                assert_eq!(
                    fire.timestamp().rem_euclid(grid.step),
                    grid.offset,
                    "{expr} {fire}"
                );
            }
        }
        assert_eq!(
            evaluation_grid(
                &Schedule::Interval(Duration::from_millis(1500)),
                start,
                end,
                10
            ),
            Grid { step: 2, offset: 0 }
        );
    }

    #[test]
    fn csv_spells_values_like_prometheus() {
        let mut trace = Trace::default();
        let s = trace.series_mut("link-a", "bandwidth");
        s.push(Timestamp::from_secs(60), 144.55);
        s.push(Timestamp::from_millis(120_500), f64::NAN);
        s.push(Timestamp::from_secs(180), f64::INFINITY);
        trace
            .series_mut("link,b", "connections")
            .push(Timestamp(0), -1.0);
        assert_eq!(
            trace_to_csv(&trace),
            "timestamp,proxy_id,signal,value\n\
             0,\"link,b\",connections,-1\n\
             60,link-a,bandwidth,144.55\n\
             120.500,link-a,bandwidth,NaN\n\
             180,link-a,bandwidth,+Inf\n"
        );
        for s in ["NaN", "+Inf", "-Inf", "144.55", "-1", "1e300"] {
            let v = parse_float(s).unwrap();
            let back = FloatText(v).to_string();
            assert_eq!(
                parse_float(&back).map(f64::to_bits),
                Some(v.to_bits()),
                "{s}"
            );
        }
    }
}
