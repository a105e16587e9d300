//! The Prometheus HTTP client: requests through `prometheus-http-query`, answers decoded
//! here (only the labels and samples the engine needs), timeouts, retries and deadlines.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{
    ClientOptions, Grid, LabeledSeries, MAX_POINTS_PER_REQUEST, MetricsError, PolicyObservation,
    RangeWindow, SignalError, evaluation_grid, hour_of_point, hourly_high_query,
    hourly_highs_window, observe_window, parse_float, range_chunks, readings_at,
};
use crate::policy::{Diagnostic, Policy, Severity, Signal};
use crate::time::Timestamp;
use crate::trace::Trace;

/// A Prometheus server as the metric source. Cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct Prometheus {
    client: prometheus_http_query::Client,
    /// The URL as given (for requests).
    base: String,
    /// The URL without credentials (for messages and logs).
    url: String,
    opts: ClientOptions,
    /// The most read of one answer ([`crate::net::MAX_PROMETHEUS_BODY`]).
    max_body: usize,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus")
            .field("url", &self.url)
            .field("opts", &self.opts)
            .finish()
    }
}

/// `url` without a `user:password@` part (unparsable input is cut at the last `@`).
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(i), Some(j)) if j > i => format!("{}{}", &url[..i + 3], &url[j + 1..]),
            _ => url.to_string(),
        },
    }
}

/// A problem found by [`check_policy_queries`] in one signal of one policy.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryProblem {
    pub policy: String,
    /// The policy file, when the policy came from one.
    pub source: Option<std::path::PathBuf>,
    pub signal: String,
    pub severity: Severity,
    pub message: String,
}

impl QueryProblem {
    /// As a policy diagnostic: the policy file (or, for a policy built in code, its
    /// name), without line and column (a validated policy keeps no spans).
    pub fn to_diagnostic(&self) -> Diagnostic {
        let file = self
            .source
            .clone()
            .unwrap_or_else(|| std::path::PathBuf::from(&self.policy));
        Diagnostic {
            file,
            line: 0,
            col: 0,
            severity: self.severity,
            message: format!("signal `{}`: {}", self.signal, self.message),
            help: None,
        }
    }
}

impl std::fmt::Display for QueryProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(src) = &self.source {
            write!(f, "{}: ", src.display())?;
        }
        write!(
            f,
            "policy `{}`, signal `{}`: {}",
            self.policy, self.signal, self.message
        )
    }
}

/// Checks every signal query of `policies` against the Prometheus at `url` (default
/// options, evaluated at the server's current time); see
/// [`Prometheus::check_queries_at`]. `Err` means Prometheus could not be asked at all.
pub async fn check_policy_queries(
    url: &str,
    policies: &[Policy],
) -> Result<Vec<QueryProblem>, MetricsError> {
    let prom = Prometheus::new(url, ClientOptions::default())?;
    prom.check_queries_at(policies, None).await
}

/// [`check_policy_queries`] for synchronous callers (the `validate` command): runs on
/// its own single-threaded runtime. Do not call it from inside an async runtime.
pub fn check_policy_queries_blocking(
    url: &str,
    policies: &[Policy],
) -> Result<Vec<QueryProblem>, MetricsError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| MetricsError::Connect {
            url: redact(url),
            message: format!("cannot start the async runtime: {e}"),
        })?;
    rt.block_on(check_policy_queries(url, policies))
}

/// The policy's evaluation step at `now`: its interval, a cron's from its fire times of
/// the last day (at most 1,000 of them); at least 1 s.
fn evaluation_step(policy: &Policy, now: Timestamp) -> Duration {
    let day_ago = now - Duration::from_secs(86_400);
    let grid = evaluation_grid(&policy.schedule, day_ago, now, 1_000);
    Duration::from_secs(grid.step.max(1) as u64)
}

impl Prometheus {
    /// A client for the Prometheus at `url` (e.g. `http://127.0.0.1:9090`, a path prefix
    /// is kept).
    pub fn new(url: &str, opts: ClientOptions) -> Result<Prometheus, MetricsError> {
        let invalid = |message: String| MetricsError::InvalidUrl {
            url: redact(url),
            message,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(opts.timeout)
            .redirect(crate::net::redirect_policy())
            .build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        let client =
            prometheus_http_query::Client::from(http, url).map_err(|e| invalid(e.to_string()))?;
        // Messages and logs name the server without any user:password in the URL.
        let mut shown = parsed.clone();
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
        Ok(Prometheus {
            client,
            base: url.trim_end_matches('/').to_string(),
            url: shown.as_str().trim_end_matches('/').to_string(),
            opts,
            max_body: crate::net::MAX_PROMETHEUS_BODY,
        })
    }

    /// The same client reading at most `bytes` of one answer.
    pub fn with_max_body(mut self, bytes: usize) -> Prometheus {
        self.max_body = bytes;
        self
    }

    /// The server's URL, without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// The range window each signal of `policy` is queried over by [`Self::observe`] at
    /// `now`, by signal name.
    pub fn observe_windows(policy: &Policy, now: Timestamp) -> BTreeMap<String, RangeWindow> {
        let step = evaluation_step(policy, now);
        policy
            .signals
            .iter()
            .map(|(name, s)| (name.clone(), observe_window(step, s.max_age, now)))
            .collect()
    }

    /// Observes every signal of `policy` at `now`: one request per signal (all signals
    /// at once), each bounded by the options' deadline. Never fails: a failed signal is
    /// reported in [`PolicyObservation::errors`] (and logged) and its proxies get
    /// `QueryError`.
    pub async fn observe(&self, policy: &Policy, now: Timestamp) -> PolicyObservation {
        let windows = Self::observe_windows(policy, now);
        let deadline = Instant::now() + self.opts.deadline;
        let mut tasks = JoinSet::new();
        let mut task_signal = HashMap::new();
        for (name, signal) in &policy.signals {
            let this = self.clone();
            let signal = signal.clone();
            let window = windows[name];
            let task_name = name.clone();
            let handle = tasks.spawn(async move {
                let res = this
                    .range_series(
                        &signal.query,
                        &signal.proxy_label,
                        window,
                        Some(now.millis()),
                        deadline,
                    )
                    .await;
                let res =
                    res.map(|series| readings_at(&series, now, signal.max_age.as_millis() as i64));
                (task_name, res)
            });
            task_signal.insert(handle.id(), name.clone());
        }
        let mut out = PolicyObservation {
            time: now,
            signals: policy.signals.keys().cloned().collect(),
            per_proxy: HashMap::new(),
            errors: Vec::new(),
        };
        while let Some(joined) = tasks.join_next().await {
            let (name, res) = match joined {
                Ok(r) => r,
                // A panicking task is a bug: its signal has no data, the others are kept.
                Err(e) => (
                    task_signal.get(&e.id()).cloned().unwrap_or_default(),
                    Err(MetricsError::Decode {
                        message: format!("internal error: {e}"),
                    }),
                ),
            };
            match res {
                Ok(readings) => {
                    for (proxy, reading) in readings {
                        out.per_proxy
                            .entry(proxy)
                            .or_default()
                            .signals
                            .insert(name.clone(), reading);
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        policy = %policy.name,
                        signal = %name,
                        kind = error.kind(),
                        error = %error,
                        prometheus = %self.url,
                        "signal query failed; its proxies have no data"
                    );
                    out.errors.push(SignalError {
                        policy: policy.name.clone(),
                        signal: name,
                        error,
                    });
                }
            }
        }
        out.errors.sort_by(|a, b| a.signal.cmp(&b.signal));
        out
    }

    /// The seasonal memory's warm-up at start-up (issue 13): for each signal that a
    /// target-tracking dimension of `policy` reads, each proxy's highest value in each
    /// whole hour of the `[predictive] lookback` before `now` ([`hourly_highs_window`]:
    /// one bounded request per signal, 24 points a day), by (proxy, signal name), each
    /// point at the start of its hour. Only `proxies` are kept.
    pub async fn hourly_highs(
        &self,
        policy: &Policy,
        proxies: &[String],
        now: Timestamp,
    ) -> Result<HashMap<(String, String), Vec<(Timestamp, f64)>>, MetricsError> {
        let mut out = HashMap::new();
        let Some(window) = hourly_highs_window(policy.predictive.lookback, now) else {
            return Ok(out);
        };
        // The subquery samples on the evaluation step.
        let step = evaluation_step(policy, now);
        let keep: HashSet<&str> = proxies.iter().map(String::as_str).collect();
        let names: std::collections::BTreeSet<&str> = [&policy.bandwidth, &policy.concurrent]
            .into_iter()
            .flatten()
            .filter(|d| matches!(d.rule, crate::policy::Rule::TargetTracking { .. }))
            .map(|d| d.signal.as_str())
            .collect();
        for name in names {
            let Some(signal) = policy.signals.get(name) else {
                continue;
            };
            let query = hourly_high_query(&signal.query, step);
            let deadline = Instant::now() + self.opts.deadline;
            let series = self
                .range_series(&query, &signal.proxy_label, window, None, deadline)
                .await?;
            for s in series {
                let Some(proxy) = s.proxy else { continue };
                if !keep.contains(proxy.as_str()) {
                    continue;
                }
                let points = s
                    .samples
                    .into_iter()
                    .map(|(t, v)| (hour_of_point(t), v))
                    .collect();
                // Several series for one proxy: ambiguous, nothing learned from them.
                match out.entry((proxy, name.to_string())) {
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(points);
                    }
                    std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().clear(),
                }
            }
        }
        Ok(out)
    }

    /// Fetches the history of every signal of `policies` over `[start, end]` as range
    /// queries on each policy's evaluation grid ([`evaluation_grid`]: an interval
    /// policy's evaluation times, every fire time of a cron policy), chunked so that no request asks for more
    /// than 11,000 points per series, at most `concurrency` requests in flight.
    /// `progress(done, total)` is called once before the first request and after each.
    ///
    /// Samples are stored per (proxy, signal name). `proxies` limits the proxies kept
    /// (empty: keep every proxy the queries return). At a time where several series carry
    /// one proxy's id the sample is stored as NaN: ambiguous, so it never reaches the
    /// decision core as a number (a CSV export writes `NaN`). Policies sharing a signal
    /// name must share its query and proxy label; different steps for one signal are
    /// fetched separately and merged.
    pub async fn fetch_range(
        &self,
        policies: &[Policy],
        proxies: &[String],
        start: Timestamp,
        end: Timestamp,
        progress: impl Fn(usize, usize),
    ) -> Result<Trace, MetricsError> {
        // Signal name -> (definition, owning policy, grids).
        let mut signals: BTreeMap<String, (&Signal, &str, Vec<Grid>)> = BTreeMap::new();
        for p in policies {
            let grid = evaluation_grid(&p.schedule, start, end, 100_000);
            for (name, s) in &p.signals {
                let entry = signals
                    .entry(name.clone())
                    .or_insert((s, &p.name, Vec::new()));
                if entry.0.query != s.query || entry.0.proxy_label != s.proxy_label {
                    return Err(MetricsError::SignalConflict {
                        signal: name.clone(),
                        first: entry.1.to_string(),
                        second: p.name.clone(),
                    });
                }
                if !entry.2.contains(&grid) {
                    entry.2.push(grid);
                }
            }
        }
        // Every request: (signal, fetch group = one step of one signal, window).
        let mut requests = Vec::new();
        for (name, (signal, _, grids)) in &signals {
            for (group, &grid) in grids.iter().enumerate() {
                for w in range_chunks(start.secs(), end.secs(), grid, MAX_POINTS_PER_REQUEST) {
                    requests.push((name.clone(), (*signal).clone(), group, w));
                }
            }
        }
        let total = requests.len();
        progress(0, total);
        let keep: Arc<HashSet<String>> = Arc::new(proxies.iter().cloned().collect());
        let mut merged: BTreeMap<(String, String), BTreeMap<i64, MergedPoint>> = BTreeMap::new();
        let mut tasks = JoinSet::new();
        let mut pending = requests.into_iter();
        let mut done = 0;
        let limit = self.opts.concurrency.max(1);
        loop {
            while tasks.len() < limit {
                let Some((name, signal, group, w)) = pending.next() else {
                    break;
                };
                let this = self.clone();
                tasks.spawn(async move {
                    let deadline = Instant::now() + this.opts.deadline;
                    let res = this
                        .range_series(&signal.query, &signal.proxy_label, w, None, deadline)
                        .await;
                    (name, group, res)
                });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (name, group, res) = joined.map_err(|e| MetricsError::Decode {
                message: format!("range task failed: {e}"),
            })?;
            let series = res?;
            for s in series {
                let Some(proxy) = s.proxy else { continue };
                if !keep.is_empty() && !keep.contains(&proxy) {
                    continue;
                }
                let points = merged.entry((proxy, name.clone())).or_default();
                for (t, value) in s.samples {
                    let p = points.entry(t).or_insert(MergedPoint {
                        group,
                        value,
                        series: 0,
                    });
                    // Another step of the same query at the same time is the same value;
                    // several series within one fetch make the time ambiguous.
                    if p.group == group {
                        p.series += 1;
                    }
                }
            }
            done += 1;
            progress(done, total);
        }
        let mut trace = Trace::default();
        for ((proxy, signal), points) in merged {
            let series = trace.series_mut(&proxy, &signal);
            for (t, p) in points {
                series.push(Timestamp(t), if p.series > 1 { f64::NAN } else { p.value });
            }
        }
        Ok(trace)
    }

    /// Checks each signal of `policies`: the query parses (`/api/v1/format_query`, which
    /// evaluates nothing) and, evaluated at `at` (None: the server's current time),
    /// returns an instant vector whose series all carry the proxy label, at most one per
    /// proxy. An empty result is a warning (nothing could be checked). `Err` only when
    /// Prometheus cannot be asked (unreachable, failing): an environment error.
    pub async fn check_queries_at(
        &self,
        policies: &[Policy],
        at: Option<Timestamp>,
    ) -> Result<Vec<QueryProblem>, MetricsError> {
        let mut problems = Vec::new();
        for p in policies {
            for (name, s) in &p.signals {
                let problem = |severity, message: String| QueryProblem {
                    policy: p.name.clone(),
                    source: p.source.clone(),
                    signal: name.clone(),
                    severity,
                    message,
                };
                let deadline = Instant::now() + self.opts.deadline;
                let parsed = self
                    .with_retries(deadline, |t| self.send_format_query(&s.query, t))
                    .await;
                match parsed {
                    Ok(()) => {}
                    Err(MetricsError::BadQuery { message }) => {
                        problems.push(problem(
                            Severity::Error,
                            format!("query does not parse: {message}"),
                        ));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                let deadline = Instant::now() + self.opts.deadline;
                let answer = self
                    .with_retries(deadline, |t| {
                        self.send_instant(&s.query, &s.proxy_label, at, t)
                    })
                    .await;
                let data = match answer {
                    Ok(d) => d,
                    Err(e) if e.is_environment() => return Err(e),
                    Err(e) => {
                        problems.push(problem(Severity::Error, format!("query fails: {e}")));
                        continue;
                    }
                };
                let items = match data {
                    ("vector", items) => items,
                    (kind, _) => {
                        problems.push(problem(
                            Severity::Error,
                            format!(
                                "query returns a {kind}, not an instant vector with one series per proxy"
                            ),
                        ));
                        continue;
                    }
                };
                if items.is_empty() {
                    problems.push(problem(
                        Severity::Warning,
                        "query returns no series now, so its proxies cannot be checked".into(),
                    ));
                    continue;
                }
                let mut per_proxy: BTreeMap<&str, usize> = BTreeMap::new();
                let mut unlabeled = 0;
                for item in &items {
                    match item.proxy.as_deref() {
                        Some(id) => *per_proxy.entry(id).or_default() += 1,
                        None => unlabeled += 1,
                    }
                }
                if unlabeled > 0 {
                    problems.push(problem(
                        Severity::Error,
                        format!(
                            "{unlabeled} of {} result series carry no `{}` label; keep it in the result (e.g. `max by ({}) (...)`)",
                            items.len(),
                            s.proxy_label,
                            s.proxy_label
                        ),
                    ));
                }
                let dups: Vec<String> = per_proxy
                    .iter()
                    .filter(|(_, n)| **n > 1)
                    .map(|(id, n)| format!("{id} ({n} series)"))
                    .collect();
                if !dups.is_empty() {
                    let shown = dups.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
                    let more = if dups.len() > 5 {
                        format!(" and {} more", dups.len() - 5)
                    } else {
                        String::new()
                    };
                    problems.push(problem(
                        Severity::Error,
                        format!(
                            "query returns several series for one proxy: {shown}{more}; aggregate by the proxy label, e.g. `max by ({}) (...)`",
                            s.proxy_label
                        ),
                    ));
                }
            }
        }
        Ok(problems)
    }

    /// One range query (with retries, bounded by `deadline`), split into series by
    /// `proxy_label`; with `until` (Unix ms), each series keeps only its latest sample
    /// not after it.
    async fn range_series(
        &self,
        query: &str,
        proxy_label: &str,
        w: RangeWindow,
        until: Option<i64>,
        deadline: Instant,
    ) -> Result<Vec<LabeledSeries>, MetricsError> {
        self.with_retries(deadline, |t| {
            self.send_range(query, proxy_label, w, until, t)
        })
        .await
    }

    /// Runs `attempt(timeout)` until it succeeds, fails for good, the retries are used up
    /// or `deadline` passes. Each attempt gets the request timeout, shortened to what is
    /// left of the deadline.
    async fn with_retries<T, F, Fut>(
        &self,
        deadline: Instant,
        mut attempt: F,
    ) -> Result<T, MetricsError>
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = Result<T, MetricsError>>,
    {
        let mut tries = 0u32;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = self.opts.timeout.min(left);
            if timeout.is_zero() {
                return Err(MetricsError::Timeout {
                    after: self.opts.deadline,
                });
            }
            let err = match attempt(timeout).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let backoff = self.opts.backoff * 2u32.saturating_pow(tries);
            let left = deadline.saturating_duration_since(Instant::now());
            if !err.is_transient() || tries >= self.opts.retries || backoff >= left {
                return Err(err);
            }
            tries += 1;
            tracing::debug!(
                prometheus = %self.url,
                attempt = tries,
                kind = err.kind(),
                error = %err,
                "retrying Prometheus request"
            );
            tokio::time::sleep(backoff).await;
        }
    }

    async fn send_range(
        &self,
        query: &str,
        proxy_label: &str,
        w: RangeWindow,
        until: Option<i64>,
        timeout: Duration,
    ) -> Result<Vec<LabeledSeries>, MetricsError> {
        let req = self
            .client
            .query_range(query, w.start, w.end, w.step as f64)
            .timeout(timeout.as_millis() as i64);
        let body = self
            .finish(self.crate_send(req.post_raw(), timeout), timeout)
            .await?;
        decode::<QueryData>(&body)?.into_series(proxy_label, until)
    }

    /// An instant query: the kind of its result and its series.
    async fn send_instant(
        &self,
        query: &str,
        proxy_label: &str,
        at: Option<Timestamp>,
        timeout: Duration,
    ) -> Result<(&'static str, Vec<LabeledSeries>), MetricsError> {
        let mut req = self.client.query(query).timeout(timeout.as_millis() as i64);
        if let Some(at) = at {
            req = req.query("time", super::format_secs(at.millis()));
        }
        let body = self
            .finish(self.crate_send(req.post_raw(), timeout), timeout)
            .await?;
        let data = decode::<QueryData>(&body)?;
        Ok((data.kind(), data.into_series(proxy_label, None)?))
    }

    async fn send_format_query(&self, query: &str, timeout: Duration) -> Result<(), MetricsError> {
        let url = format!("{}/api/v1/format_query", self.base);
        // The crate has no call for this endpoint; use its HTTP client directly.
        let req = self
            .client
            .inner()
            .post(url)
            .form(&[("query", query)])
            .send();
        let fut = async { req.await.map_err(|e| self.map_reqwest_error(&e, timeout)) };
        let body = self.finish(fut, timeout).await?;
        decode::<Text>(&body).map(|_| ())
    }

    /// Sends a request built by the crate and reads the whole answer within `timeout`:
    /// maps connection errors, timeouts and non-JSON HTTP errors (e.g. a proxy's 502) to
    /// [`MetricsError`]; a JSON answer is returned for [`decode`].
    async fn finish(
        &self,
        send: impl Future<Output = Result<reqwest::Response, MetricsError>>,
        timeout: Duration,
    ) -> Result<Answer, MetricsError> {
        let work = async {
            let resp = send.await?;
            let status = resp.status().as_u16();
            if crate::net::is_redirect(status) {
                return Err(MetricsError::Redirect {
                    url: self.url.clone(),
                    status,
                    location: crate::net::location(&resp),
                });
            }
            let json = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            let endpoint = resp.url().path().to_string();
            let bytes = crate::net::read_limited(resp, self.max_body)
                .await
                .map_err(|e| match e {
                    crate::net::BodyError::Network(e) => self.map_reqwest_error(&e, timeout),
                    crate::net::BodyError::TooLarge { limit } => MetricsError::TooLarge {
                        url: self.url.clone(),
                        endpoint,
                        limit,
                    },
                })?;
            Ok::<_, MetricsError>(Answer {
                status,
                json,
                bytes,
            })
        };
        let answer = tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| MetricsError::Timeout { after: timeout })??;
        if !answer.json {
            let body = String::from_utf8_lossy(&answer.bytes);
            let body: String = body.trim().chars().take(300).collect();
            return Err(if answer.status >= 400 {
                MetricsError::Http {
                    status: answer.status,
                    body,
                }
            } else {
                MetricsError::Decode {
                    message: format!("HTTP {} with a non-JSON body: {body}", answer.status),
                }
            });
        }
        Ok(answer)
    }

    /// A request sent by the crate, its errors mapped.
    async fn crate_send(
        &self,
        send: impl Future<Output = Result<reqwest::Response, prometheus_http_query::Error>>,
        timeout: Duration,
    ) -> Result<reqwest::Response, MetricsError> {
        send.await.map_err(|e| self.map_send_error(e, timeout))
    }

    fn map_send_error(&self, e: prometheus_http_query::Error, timeout: Duration) -> MetricsError {
        match &e {
            prometheus_http_query::Error::Client(c) => match c.inner() {
                Some(r) => self.map_reqwest_error(r, timeout),
                None => MetricsError::Connect {
                    url: self.url.clone(),
                    message: e.to_string(),
                },
            },
            _ => MetricsError::Decode {
                message: e.to_string(),
            },
        }
    }

    fn map_reqwest_error(&self, e: &reqwest::Error, timeout: Duration) -> MetricsError {
        if e.is_timeout() {
            return MetricsError::Timeout { after: timeout };
        }
        // The innermost cause says what happened ("Connection refused (os error 111)").
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        MetricsError::Connect {
            url: self.url.clone(),
            message: cause.to_string(),
        }
    }
}

/// One time of one (proxy, signal) while merging range results: which fetch (one step of
/// one signal) it came from, its value, and how many series of that fetch had it.
struct MergedPoint {
    group: usize,
    value: f64,
    series: usize,
}

/// Decodes the JSON body of a `/api/v1/query` or `/api/v1/query_range` answer into
/// series split by `proxy_label`, as [`Prometheus::fetch_range`] does (e.g. to replay a
/// saved answer); with `until`, each series keeps only its latest sample not after it,
/// all a reading at `until` needs, as [`Prometheus::observe`] does.
pub fn decode_answer(
    body: &[u8],
    proxy_label: &str,
    until: Option<Timestamp>,
) -> Result<Vec<LabeledSeries>, MetricsError> {
    let answer = Answer {
        status: 200,
        json: true,
        bytes: body.to_vec(),
    };
    decode::<QueryData>(&answer)?.into_series(proxy_label, until.map(Timestamp::millis))
}

/// A whole HTTP answer.
struct Answer {
    status: u16,
    json: bool,
    bytes: Vec<u8>,
}

/// The API envelope: `{"status":"success","data":...}` or
/// `{"status":"error","errorType":"bad_data","error":"..."}`.
#[derive(Deserialize)]
struct Envelope<D> {
    status: String,
    data: Option<D>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

fn decode<'a, D: Deserialize<'a>>(answer: &'a Answer) -> Result<D, MetricsError> {
    let env: Envelope<D> = serde_json::from_slice(&answer.bytes).map_err(|e| {
        let body: String = String::from_utf8_lossy(&answer.bytes)
            .chars()
            .take(200)
            .collect();
        if answer.status >= 400 {
            MetricsError::Http {
                status: answer.status,
                body,
            }
        } else {
            MetricsError::Decode {
                message: format!("{e}: {body}"),
            }
        }
    })?;
    match (env.status.as_str(), env.data) {
        ("success", Some(data)) => Ok(data),
        ("error", _) => {
            let error_type = env.error_type.unwrap_or_else(|| "unknown".into());
            let message = env.error.unwrap_or_default();
            Err(if error_type == "bad_data" {
                MetricsError::BadQuery { message }
            } else {
                MetricsError::Prometheus {
                    error_type,
                    message,
                }
            })
        }
        (status, _) => Err(MetricsError::Decode {
            message: format!("status `{status}` (HTTP {}) without data", answer.status),
        }),
    }
}

/// A query result, only what the engine reads from it, borrowing from the answer's bytes
/// (no allocation per sample or label).
#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum QueryData<'a> {
    Vector(#[serde(borrow)] Vec<VectorItem<'a>>),
    Matrix(#[serde(borrow)] Vec<MatrixItem<'a>>),
    Scalar(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorItem<'a> {
    #[serde(borrow)]
    metric: Labels<'a>,
    #[serde(borrow)]
    value: RawSample<'a>,
}

#[derive(Deserialize)]
struct MatrixItem<'a> {
    #[serde(borrow)]
    metric: Labels<'a>,
    #[serde(borrow)]
    values: Vec<RawSample<'a>>,
}

/// `[1795666320.5, "144.55"]`
#[derive(Deserialize)]
struct RawSample<'a>(f64, #[serde(borrow)] Text<'a>);

impl RawSample<'_> {
    fn parse(&self) -> Result<(i64, f64), MetricsError> {
        let v = parse_float(&self.1.0).ok_or_else(|| MetricsError::Decode {
            message: format!("sample value `{}` is not a number", self.1.0),
        })?;
        Ok(((self.0 * 1000.0).round() as i64, v))
    }
}

/// A JSON string, borrowed unless it holds escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// A series' labels, in answer order.
struct Labels<'a>(Vec<(Text<'a>, Text<'a>)>);

impl Labels<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.0 == name).map(|(_, v)| &*v.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Labels<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of labels")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Labels<'a>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(entry) = map.next_entry::<Text<'a>, Text<'a>>()? {
                    out.push(entry);
                }
                Ok(Labels(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl QueryData<'_> {
    fn kind(&self) -> &'static str {
        match self {
            QueryData::Vector(_) => "vector",
            QueryData::Matrix(_) => "range vector",
            QueryData::Scalar(_) => "scalar",
            QueryData::String(_) => "string",
        }
    }

    /// The series, split by `proxy_label`; with `until` (Unix ms) only each series'
    /// latest sample not after it is kept (and only its value is parsed).
    fn into_series(
        self,
        proxy_label: &str,
        until: Option<i64>,
    ) -> Result<Vec<LabeledSeries>, MetricsError> {
        let mut out = Vec::new();
        match self {
            QueryData::Matrix(items) => {
                for item in items {
                    let samples = match until {
                        None => item
                            .values
                            .iter()
                            .map(RawSample::parse)
                            .collect::<Result<Vec<_>, _>>()?,
                        Some(until) => {
                            let n = item
                                .values
                                .partition_point(|s| (s.0 * 1000.0).round() as i64 <= until);
                            match n.checked_sub(1) {
                                Some(i) => vec![item.values[i].parse()?],
                                None => Vec::new(),
                            }
                        }
                    };
                    out.push(LabeledSeries {
                        proxy: item.metric.get(proxy_label).map(str::to_string),
                        samples,
                    });
                }
            }
            QueryData::Vector(items) => {
                for item in items {
                    out.push(LabeledSeries {
                        proxy: item.metric.get(proxy_label).map(str::to_string),
                        samples: vec![item.value.parse()?],
                    });
                }
            }
            // A scalar or string carries no proxy label: no proxy gets a value.
            QueryData::Scalar(_) | QueryData::String(_) => {}
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            json: true,
            bytes: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn decodes_matrices_with_escapes_and_special_values() {
        let a = answer(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[
              {"metric":{"channel_id":"link-\"q\"","x":"y"},"values":[[1.5,"NaN"],[2,"+Inf"],[3,"-4.25"]]},
              {"metric":{"other":"z"},"values":[[3,"1"]]}]}}"#,
        );
        let data = decode::<QueryData>(&a).unwrap();
        assert_eq!(data.kind(), "range vector");
        let series = data.into_series("channel_id", None).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].proxy.as_deref(), Some("link-\"q\""));
        let s = &series[0].samples;
        assert_eq!(s[0].0, 1500);
        assert!(s[0].1.is_nan());
        assert_eq!(s[1], (2000, f64::INFINITY));
        assert_eq!(s[2], (3000, -4.25));
        assert_eq!(series[1].proxy, None);
        let body = a.bytes.clone();
        let latest = decode_answer(&body, "channel_id", Some(Timestamp(2999))).unwrap();
        assert_eq!(latest[0].samples, vec![(2000, f64::INFINITY)]);
        assert!(latest[1].samples.is_empty());
    }

    #[test]
    fn credentials_never_show_in_messages() {
        assert_eq!(redact("http://u:secret@h:9090/p"), "http://h:9090/p");
        assert_eq!(redact("http://u:secret@h:bad"), "http://h:bad");
        let p =
            Prometheus::new("http://u:secret@127.0.0.1:9090/", ClientOptions::default()).unwrap();
        assert_eq!(p.url(), "http://127.0.0.1:9090");
        let e = Prometheus::new("ftp://u:secret@h", ClientOptions::default()).unwrap_err();
        assert_eq!(e.kind(), "invalid_url");
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn maps_error_answers() {
        let bad = answer(
            400,
            r#"{"status":"error","errorType":"bad_data","error":"1:3: parse error: x"}"#,
        );
        assert_eq!(
            decode::<QueryData>(&bad).err(),
            Some(MetricsError::BadQuery {
                message: "1:3: parse error: x".into()
            })
        );
        let exec = answer(
            422,
            r#"{"status":"error","errorType":"execution","error":"too many samples"}"#,
        );
        let err = decode::<QueryData>(&exec).err().unwrap();
        assert_eq!(err.kind(), "prometheus");
        assert!(!err.is_transient());
        let garbage = answer(502, "<html>bad gateway</html>");
        assert_eq!(decode::<QueryData>(&garbage).err().unwrap().kind(), "http");
        let bad_value = answer(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#,
        );
        let data = decode::<QueryData>(&bad_value).unwrap();
        assert_eq!(
            data.into_series("channel_id", None).err().unwrap().kind(),
            "decode"
        );
    }
}
