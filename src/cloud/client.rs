//! The GAAP client: signed POSTs over reqwest (rustls), the shared per-action budget, and
//! safe retries. Retries reuse the same body, hence the same `ClientToken`; a
//! `FailedOperation.DuplicatedRequest` means an earlier attempt took effect and is confirmed
//! with `DescribeProxies` instead of being reported as a failure.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::credentials::Credentials;
use super::error::{ApiError, CallError, RetryClass};
use super::request::{self, Endpoint};
use super::types::*;
use crate::ratelimit::{Priority, RateLimiter};

/// A boxed future, so that [`GaapApi`] can be used as `dyn GaapApi`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which proxies DescribeProxies should return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyQuery {
    /// These ids (sent 100 per request).
    Ids(Vec<String>),
    /// Proxies carrying any of these tags (OR, at most 5), paged by 100.
    Tags(Vec<TagPair>),
    /// Every proxy, paged by 100.
    All,
}

/// One capacity change. `client_token` is the decision id (≤ 64 ASCII characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModifyRequest {
    pub proxy_id: String,
    pub bandwidth: Option<u32>,
    pub concurrent: Option<u32>,
    pub client_token: String,
    pub billing_type: Option<i64>,
}

/// A change the API accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModifyOutcome {
    /// The RequestId of the accepted attempt (or of the DuplicatedRequest answer).
    pub request_id: String,
    /// Attempts made, 1 when the first one succeeded.
    pub attempts: u32,
    /// True when an attempt answered `FailedOperation.DuplicatedRequest` and DescribeProxies
    /// confirmed the requested values: an earlier attempt had taken effect.
    pub confirmed_duplicate: bool,
}

/// A change that did not go through (or could not be confirmed).
#[derive(Debug, thiserror::Error)]
#[error("{error} (after {attempts} attempt(s))")]
pub struct ModifyFailure {
    pub error: CallError,
    pub attempts: u32,
}

/// The calls the daemon makes; implemented by [`GaapClient`] and by test fakes.
pub trait GaapApi: Send + Sync {
    fn describe_proxies<'a>(
        &'a self,
        query: &'a ProxyQuery,
    ) -> BoxFuture<'a, Result<Vec<ProxyInfo>, CallError>>;
    fn describe_proxies_status<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<InstanceStatus>, CallError>>;
    fn describe_proxy_detail<'a>(
        &'a self,
        proxy_id: &'a str,
    ) -> BoxFuture<'a, Result<ProxyInfo, CallError>>;
    fn describe_access_regions_by_dest_region<'a>(
        &'a self,
        dest_region: &'a str,
    ) -> BoxFuture<'a, Result<Vec<AccessRegionDetail>, CallError>>;
    fn modify_proxy_configuration<'a>(
        &'a self,
        request: &'a ModifyRequest,
        priority: Priority,
    ) -> BoxFuture<'a, Result<ModifyOutcome, ModifyFailure>>;
}

/// Retry policy: attempts in total, and exponential backoff with jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
        }
    }
}

/// The wait after failed attempt `attempt` (1-based): `base × 2^(attempt-1)` capped, of which
/// the upper half is jittered (`jitter` in [0, 1)). Pure.
pub fn backoff(policy: &RetryPolicy, attempt: u32, jitter: f64) -> Duration {
    let exp = policy
        .base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(policy.cap);
    let half = exp / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub endpoint: Endpoint,
    /// `X-TC-Region`; GAAP does not need one.
    pub region: Option<String>,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// The most read of one answer ([`crate::net::MAX_API_BODY`]).
    pub max_body: usize,
}

impl ClientConfig {
    pub fn new(endpoint: Endpoint) -> ClientConfig {
        ClientConfig {
            endpoint,
            region: None,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_body: crate::net::MAX_API_BODY,
        }
    }
}

/// Asked right before each attempt of a modifying call, after the budget's wait: false
/// stops the call unsent (under `[ha]`: this daemon no longer leads).
pub type SendGate = Arc<dyn Fn() -> bool + Send + Sync>;

/// The actions a [`SendGate`] guards.
const GATED: [&str; 1] = ["ModifyProxyConfiguration"];

/// The real client. Cheap to share behind an `Arc`; the limiter is shared with every other
/// caller of the same account.
pub struct GaapClient {
    http: reqwest::Client,
    config: ClientConfig,
    credentials: Credentials,
    limiter: Arc<RateLimiter>,
    jitter_state: AtomicU64,
    gate: Option<SendGate>,
}

impl std::fmt::Debug for GaapClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaapClient")
            .field("endpoint", &self.config.endpoint.url)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl GaapClient {
    pub fn new(
        config: ClientConfig,
        credentials: Credentials,
        limiter: Arc<RateLimiter>,
    ) -> Result<GaapClient, CallError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .redirect(crate::net::redirect_policy())
            .build()
            .map_err(|e| CallError::Request(format!("cannot build the HTTP client: {e}")))?;
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Ok(GaapClient {
            http,
            config,
            credentials,
            limiter,
            jitter_state: AtomicU64::new(seed),
            gate: None,
        })
    }

    /// Adds a [`SendGate`] to the modifying calls.
    pub fn with_send_gate(mut self, gate: SendGate) -> GaapClient {
        self.gate = Some(gate);
        self
    }

    /// Whether the gate lets `action` be sent now.
    fn gate_open(&self, action: &str) -> bool {
        !GATED.contains(&action) || self.gate.as_ref().is_none_or(|g| g())
    }

    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    fn next_jitter(&self) -> f64 {
        // splitmix64 over an atomic counter: good enough to spread retries apart.
        let mut z = self
            .jitter_state
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One signed call after waiting for the budget, no retry. Returns the `Response`
    /// object (with its RequestId). This is what `gaap-autoscaler api` uses.
    pub async fn call_once(
        &self,
        action: &str,
        params: &serde_json::Value,
        priority: Priority,
    ) -> Result<serde_json::Value, CallError> {
        let body = serde_json::to_vec(params).map_err(|e| CallError::Request(e.to_string()))?;
        // The permit is held until the call has ended: the budget counts it until then.
        let _sent = self.limiter.acquire(action, priority).await;
        if !self.gate_open(action) {
            return Err(CallError::Request(
                "not sent: the send gate closed (this daemon no longer leads)".into(),
            ));
        }
        self.send(action, body).await
    }

    async fn send(&self, action: &str, body: Vec<u8>) -> Result<serde_json::Value, CallError> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let prepared = request::build(
            &self.config.endpoint,
            &self.credentials,
            action,
            self.config.region.as_deref(),
            body,
            timestamp,
        );
        let mut req = self.http.post(&prepared.url).body(prepared.body);
        for (name, value) in &prepared.headers {
            req = req.header(*name, value);
        }
        let network = |e: reqwest::Error| CallError::Network {
            action: action.to_string(),
            message: describe_reqwest(&e),
        };
        let resp = req.send().await.map_err(network)?;
        let status = resp.status().as_u16();
        if crate::net::is_redirect(status) {
            return Err(CallError::Redirect {
                action: action.to_string(),
                status,
                location: crate::net::location(&resp),
            });
        }
        if status != 200 {
            // The body of an error status is not read: the status says it all.
            return Err(CallError::HttpStatus {
                action: action.to_string(),
                status,
            });
        }
        let bytes = match crate::net::read_limited(resp, self.config.max_body).await {
            Ok(b) => b,
            Err(crate::net::BodyError::Network(e)) => return Err(network(e)),
            Err(crate::net::BodyError::TooLarge { limit }) => {
                return Err(CallError::TooLarge {
                    action: action.to_string(),
                    endpoint: self.config.endpoint.url.clone(),
                    limit,
                });
            }
        };
        parse_envelope(action, &bytes)
    }

    /// Calls with retries on transient errors; returns the parsed Response and the attempts.
    async fn call_retrying<T: DeserializeOwned>(
        &self,
        action: &str,
        params: &impl Serialize,
        priority: Priority,
    ) -> Result<(T, u32), (CallError, u32)> {
        self.call_retrying_at_most(action, params, priority, self.config.retry.max_attempts)
            .await
    }

    /// [`Self::call_retrying`] with at most `max_attempts` attempts.
    async fn call_retrying_at_most<T: DeserializeOwned>(
        &self,
        action: &str,
        params: &impl Serialize,
        priority: Priority,
        max_attempts: u32,
    ) -> Result<(T, u32), (CallError, u32)> {
        let body =
            serde_json::to_vec(params).map_err(|e| (CallError::Request(e.to_string()), 0))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Held until the call has ended: the budget counts the request until then.
            let sent = self.limiter.acquire(action, priority).await;
            if !self.gate_open(action) {
                // Earlier attempts may have been applied: the outcome is unknown, and the
                // decision stays pending for whoever may send (same ClientToken).
                return Err((
                    CallError::OutcomeUnknown {
                        action: action.to_string(),
                        message: "not sent: the send gate closed (this daemon no longer leads)"
                            .into(),
                    },
                    attempt - 1,
                ));
            }
            let result = self.send(action, body.clone()).await;
            drop(sent);
            let err = match result {
                Ok(v) => {
                    return serde_json::from_value::<T>(v)
                        .map(|t| (t, attempt))
                        .map_err(|e| {
                            (
                                CallError::Decode {
                                    action: action.to_string(),
                                    message: e.to_string(),
                                },
                                attempt,
                            )
                        });
                }
                Err(e) => e,
            };
            tracing::warn!(
                action,
                code = err.code(),
                request_id = err.request_id().unwrap_or(""),
                attempt,
                error = %err,
                "GAAP call failed"
            );
            if err.retry_class() != RetryClass::Retry || attempt >= max_attempts {
                return Err((err, attempt));
            }
            tokio::time::sleep(backoff(&self.config.retry, attempt, self.next_jitter())).await;
        }
    }

    async fn describe_proxies_impl(&self, query: &ProxyQuery) -> Result<Vec<ProxyInfo>, CallError> {
        let mut listing = Listing::default();
        match query {
            ProxyQuery::Ids(ids) => {
                for chunk in ids.chunks(PAGE as usize) {
                    let req = DescribeProxiesRequest {
                        proxy_ids: Some(chunk.to_vec()),
                        limit: Some(PAGE),
                        ..Default::default()
                    };
                    let (page, _): (DescribeProxiesResponse, _) = self
                        .call_retrying("DescribeProxies", &req, Priority::Normal)
                        .await
                        .map_err(|(e, _)| e)?;
                    listing.add_requested(chunk, page.proxy_set)?;
                }
            }
            ProxyQuery::Tags(_) | ProxyQuery::All => {
                let tag_set = match query {
                    ProxyQuery::Tags(t) => Some(t.clone()),
                    _ => None,
                };
                loop {
                    let req = DescribeProxiesRequest {
                        offset: Some(listing.len() as u64),
                        limit: Some(PAGE),
                        tag_set: tag_set.clone(),
                        ..Default::default()
                    };
                    let (page, _): (DescribeProxiesResponse, _) = self
                        .call_retrying("DescribeProxies", &req, Priority::Normal)
                        .await
                        .map_err(|(e, _)| e)?;
                    if listing.add_page(page)? == PageEnd::Last {
                        break;
                    }
                }
            }
        }
        Ok(listing.proxies)
    }

    async fn modify_impl(
        &self,
        request: &ModifyRequest,
        priority: Priority,
    ) -> Result<ModifyOutcome, ModifyFailure> {
        let wire = ModifyProxyConfigurationRequest {
            proxy_id: request.proxy_id.clone(),
            bandwidth: request.bandwidth,
            concurrent: request.concurrent,
            client_token: Some(request.client_token.clone()),
            billing_type: request.billing_type,
        };
        if request.client_token.is_empty()
            || request.client_token.len() > 64
            || !request.client_token.is_ascii()
        {
            return Err(ModifyFailure {
                error: CallError::Request("ClientToken must be 1 to 64 ASCII characters".into()),
                attempts: 0,
            });
        }
        let max_attempts = self.config.retry.max_attempts.max(1);
        let mut attempts = 0;
        loop {
            let result = self
                .call_retrying_at_most::<ModifyProxyConfigurationResponse>(
                    "ModifyProxyConfiguration",
                    &wire,
                    priority,
                    max_attempts - attempts,
                )
                .await;
            match result {
                Ok((resp, n)) => {
                    return Ok(ModifyOutcome {
                        request_id: resp.request_id,
                        attempts: attempts + n,
                        confirmed_duplicate: false,
                    });
                }
                Err((CallError::Api(dup), n)) if dup.retry_class() == RetryClass::Duplicate => {
                    return self.confirm_duplicate(request, dup, attempts + n).await;
                }
                // A 200 whose body cannot be read: the change may have been applied. Ask
                // DescribeProxies; if it was not, send again under the same ClientToken
                // (which the API applies at most once).
                Err((error, n)) if error.is_unreadable_answer() => {
                    attempts += n;
                    let unknown = |message: String| ModifyFailure {
                        error: CallError::OutcomeUnknown {
                            action: "ModifyProxyConfiguration".into(),
                            message,
                        },
                        attempts,
                    };
                    match self.shows_requested_values(request).await {
                        Ok(true) => {
                            tracing::info!(
                                action = "ModifyProxyConfiguration",
                                proxy_id = %request.proxy_id,
                                attempts,
                                "unreadable answer, but DescribeProxies shows the change applied"
                            );
                            return Ok(ModifyOutcome {
                                request_id: String::new(),
                                attempts,
                                confirmed_duplicate: false,
                            });
                        }
                        Ok(false) if attempts < max_attempts => {
                            tracing::warn!(
                                action = "ModifyProxyConfiguration",
                                proxy_id = %request.proxy_id,
                                attempts,
                                error = %error,
                                "unreadable answer and the change is not visible; sending again with the same ClientToken"
                            );
                            tokio::time::sleep(backoff(
                                &self.config.retry,
                                attempts,
                                self.next_jitter(),
                            ))
                            .await;
                        }
                        Ok(false) => {
                            return Err(unknown(format!(
                                "{error}; DescribeProxies does not show the change"
                            )));
                        }
                        Err(e) => {
                            return Err(unknown(format!(
                                "{error}; DescribeProxies could not confirm it: {e}"
                            )));
                        }
                    }
                }
                Err((error, n)) => {
                    return Err(ModifyFailure {
                        error,
                        attempts: attempts + n,
                    });
                }
            }
        }
    }

    /// Whether DescribeProxies shows the proxy at the requested values.
    async fn shows_requested_values(&self, request: &ModifyRequest) -> Result<bool, CallError> {
        let query = ProxyQuery::Ids(vec![request.proxy_id.clone()]);
        let proxies = self.describe_proxies_impl(&query).await?;
        Ok(proxies
            .iter()
            .find(|p| p.id() == request.proxy_id)
            .is_some_and(|p| {
                request.bandwidth.is_none_or(|b| b == p.bandwidth)
                    && request.concurrent.is_none_or(|c| c == p.concurrent)
            }))
    }

    /// After DuplicatedRequest: the change is confirmed when DescribeProxies shows the
    /// requested values (or the proxy is still ADJUSTING towards them).
    async fn confirm_duplicate(
        &self,
        request: &ModifyRequest,
        dup: ApiError,
        attempts: u32,
    ) -> Result<ModifyOutcome, ModifyFailure> {
        let matches = match self.shows_requested_values(request).await {
            Ok(m) => m,
            Err(error) => return Err(ModifyFailure { error, attempts }),
        };
        if matches {
            tracing::info!(
                action = "ModifyProxyConfiguration",
                proxy_id = %request.proxy_id,
                request_id = %dup.request_id,
                attempts,
                "DuplicatedRequest: an earlier attempt took effect (confirmed by DescribeProxies)"
            );
            Ok(ModifyOutcome {
                request_id: dup.request_id,
                attempts,
                confirmed_duplicate: true,
            })
        } else {
            Err(ModifyFailure {
                error: CallError::Api(dup),
                attempts,
            })
        }
    }
}

/// Proxies asked for per DescribeProxies request (the API's maximum).
const PAGE: u64 = 100;

/// The most pages one listing reads (100,000 proxies). A listing that would need more is
/// taken as an answer that cannot be trusted, not paged forever.
pub const MAX_PAGES: usize = 1_000;

/// A DescribeProxies listing being read, page by page, checked as it grows: every proxy
/// once, by ProxyId, and the pages adding up to the TotalCount they announce.
#[derive(Default)]
struct Listing {
    proxies: Vec<ProxyInfo>,
    seen: HashSet<String>,
    pages: usize,
    total: Option<u64>,
}

/// Whether a listing needs another page.
#[derive(Debug, PartialEq, Eq)]
enum PageEnd {
    More,
    Last,
}

fn inconsistent(message: String) -> CallError {
    CallError::Inconsistent {
        action: "DescribeProxies".into(),
        message,
    }
}

impl Listing {
    fn len(&self) -> usize {
        self.proxies.len()
    }

    fn add(&mut self, p: ProxyInfo) -> Result<(), CallError> {
        let id = p.id();
        if id.is_empty() {
            return Err(inconsistent("a proxy without ProxyId".into()));
        }
        if !self.seen.insert(id.to_string()) {
            return Err(inconsistent(format!(
                "proxy {id} is listed twice (a repeated page: was Offset ignored?)"
            )));
        }
        self.proxies.push(p);
        Ok(())
    }

    /// The answer to a request by ids: only proxies asked for, each once.
    fn add_requested(&mut self, asked: &[String], set: Vec<ProxyInfo>) -> Result<(), CallError> {
        for p in set {
            if !asked.iter().any(|a| a == p.id()) {
                return Err(inconsistent(format!(
                    "proxy {} was not asked for (ProxyIds ignored?)",
                    p.id()
                )));
            }
            self.add(p)?;
        }
        Ok(())
    }

    /// One page of a paged listing, asked at offset `self.len()`.
    fn add_page(&mut self, page: DescribeProxiesResponse) -> Result<PageEnd, CallError> {
        self.pages += 1;
        let total = page.total_count;
        let max = MAX_PAGES as u64 * PAGE;
        if total > max {
            return Err(inconsistent(format!(
                "TotalCount {total} is more than the {max} proxies one listing reads"
            )));
        }
        if self.pages > MAX_PAGES {
            return Err(inconsistent(format!(
                "more than {MAX_PAGES} pages (TotalCount {total})"
            )));
        }
        if let Some(before) = self.total.replace(total)
            && before != total
        {
            return Err(inconsistent(format!(
                "TotalCount changed from {before} to {total} while paging; the next pass reads again"
            )));
        }
        if page.proxy_set.len() as u64 > PAGE {
            return Err(inconsistent(format!(
                "a page of {} proxies for Limit {PAGE}",
                page.proxy_set.len()
            )));
        }
        let offset = self.len();
        let added = page.proxy_set.len();
        for p in page.proxy_set {
            self.add(p)?;
        }
        let have = self.len() as u64;
        if added == 0 && have < total {
            return Err(inconsistent(format!(
                "TotalCount {total} never reached: the page at Offset {offset} added no proxy"
            )));
        }
        if have > total {
            return Err(inconsistent(format!(
                "{have} proxies listed for TotalCount {total}"
            )));
        }
        Ok(if have == total {
            PageEnd::Last
        } else {
            PageEnd::More
        })
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    // reqwest's Display names the URL (no secrets in it); add the innermost cause.
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// Reads `{"Response": {...}}`: an `Error` inside becomes [`CallError::Api`].
pub fn parse_envelope(action: &str, bytes: &[u8]) -> Result<serde_json::Value, CallError> {
    let decode = |message: String| CallError::Decode {
        action: action.to_string(),
        message,
    };
    let mut v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| decode(format!("not JSON: {e}")))?;
    let resp = v
        .get_mut("Response")
        .map(serde_json::Value::take)
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| decode("no Response object".into()))?;
    if let Some(err) = resp.get("Error") {
        return Err(CallError::Api(ApiError {
            code: error_field(err, "Code"),
            message: error_field(err, "Message"),
            request_id: resp
                .get("RequestId")
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string(),
        }));
    }
    Ok(resp)
}

/// A field of `Response.Error` as text: a string as it is, any other JSON value written
/// out (at most 200 characters), a missing one as `(no Code)` / `(no Message)` — never
/// an empty string, so a malformed error still says what it was.
fn error_field(err: &serde_json::Value, key: &str) -> String {
    if !err.is_object() && key == "Message" {
        // `"Error": "boom"`: the whole value is the message.
        return error_field(&serde_json::json!({ "Message": err }), key);
    }
    match err.get(key) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(serde_json::Value::Null) => format!("(no {key})"),
        Some(serde_json::Value::String(_)) => format!("(empty {key})"),
        Some(other) => other.to_string().chars().take(200).collect(),
    }
}

impl GaapApi for GaapClient {
    fn describe_proxies<'a>(
        &'a self,
        query: &'a ProxyQuery,
    ) -> BoxFuture<'a, Result<Vec<ProxyInfo>, CallError>> {
        Box::pin(self.describe_proxies_impl(query))
    }

    fn describe_proxies_status<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<InstanceStatus>, CallError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for chunk in ids.chunks(100) {
                let req = DescribeProxiesStatusRequest {
                    proxy_ids: chunk.to_vec(),
                };
                let (resp, _): (DescribeProxiesStatusResponse, _) = self
                    .call_retrying("DescribeProxiesStatus", &req, Priority::Normal)
                    .await
                    .map_err(|(e, _)| e)?;
                out.extend(resp.instance_status_set);
            }
            Ok(out)
        })
    }

    fn describe_proxy_detail<'a>(
        &'a self,
        proxy_id: &'a str,
    ) -> BoxFuture<'a, Result<ProxyInfo, CallError>> {
        Box::pin(async move {
            let req = DescribeProxyDetailRequest {
                proxy_id: proxy_id.to_string(),
            };
            let (resp, _): (DescribeProxyDetailResponse, _) = self
                .call_retrying("DescribeProxyDetail", &req, Priority::Normal)
                .await
                .map_err(|(e, _)| e)?;
            Ok(resp.proxy_detail)
        })
    }

    fn describe_access_regions_by_dest_region<'a>(
        &'a self,
        dest_region: &'a str,
    ) -> BoxFuture<'a, Result<Vec<AccessRegionDetail>, CallError>> {
        Box::pin(async move {
            let req = DescribeAccessRegionsByDestRegionRequest {
                dest_region: dest_region.to_string(),
                ..Default::default()
            };
            let (resp, _): (DescribeAccessRegionsByDestRegionResponse, _) = self
                .call_retrying("DescribeAccessRegionsByDestRegion", &req, Priority::Normal)
                .await
                .map_err(|(e, _)| e)?;
            Ok(resp.access_region_set)
        })
    }

    fn modify_proxy_configuration<'a>(
        &'a self,
        request: &'a ModifyRequest,
        priority: Priority,
    ) -> BoxFuture<'a, Result<ModifyOutcome, ModifyFailure>> {
        Box::pin(self.modify_impl(request, priority))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
        };
        let cases = [
            (1, 0.0, 50),
            (1, 0.999_999, 99),
            (2, 0.0, 100),
            (3, 0.5, 300),
            (4, 0.0, 400),
            (5, 0.0, 500),
            (30, 1.0, 1000),
        ];
        for (attempt, jitter, want_ms) in cases {
            assert_eq!(
                backoff(&p, attempt, jitter).as_millis() as u64,
                want_ms,
                "attempt {attempt} jitter {jitter}"
            );
        }
    }

    #[test]
    fn error_codes_that_are_not_strings_are_written_out() {
        let cases = [
            (
                r#"{"Code":"InternalError","Message":"m"}"#,
                "InternalError: m",
            ),
            (r#"{"Code":1234,"Message":"m"}"#, "1234: m"),
            (r#"{"Code":{"a":[1]},"Message":7}"#, r#"{"a":[1]}: 7"#),
            (r#"{"Code":null}"#, "(no Code): (no Message)"),
            (
                r#"{"Code":"","Message":""}"#,
                "(empty Code): (empty Message)",
            ),
            (r#""boom""#, "(no Code): boom"),
            (r#"[1,2]"#, "(no Code): [1,2]"),
        ];
        for (error, want) in cases {
            let body = format!(r#"{{"Response":{{"Error":{error},"RequestId":"r"}}}}"#);
            let err = parse_envelope("A", body.as_bytes()).unwrap_err();
            assert_eq!(err.to_string(), format!("{want} (RequestId r)"), "{error}");
        }
    }

    fn info(id: &str) -> ProxyInfo {
        ProxyInfo {
            proxy_id: id.into(),
            ..ProxyInfo::default()
        }
    }

    fn page(total: u64, ids: &[&str]) -> DescribeProxiesResponse {
        DescribeProxiesResponse {
            total_count: total,
            proxy_set: ids.iter().map(|i| info(i)).collect(),
            request_id: "r".into(),
        }
    }

    /// Pages in order: Ok(count of proxies) at the last page, or the error's text.
    fn read(pages: Vec<DescribeProxiesResponse>) -> Result<usize, String> {
        let mut l = Listing::default();
        for p in pages {
            if l.add_page(p).map_err(|e| e.to_string())? == PageEnd::Last {
                return Ok(l.len());
            }
        }
        Err(format!("wants more after {} proxies", l.len()))
    }

    #[test]
    fn listings_that_contradict_themselves_are_refused() {
        let hundred: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
        let hundred: Vec<&str> = hundred.iter().map(String::as_str).collect();
        let cases: Vec<(&str, Vec<DescribeProxiesResponse>, Result<usize, &str>)> = vec![
            ("empty fleet", vec![page(0, &[])], Ok(0)),
            ("one page", vec![page(3, &["a", "b", "c"])], Ok(3)),
            (
                "two pages",
                vec![page(101, &hundred), page(101, &["x"])],
                Ok(101),
            ),
            (
                "Offset ignored",
                vec![page(1000, &["a", "b", "c"]), page(1000, &["a", "b", "c"])],
                Err("proxy a is listed twice"),
            ),
            (
                "a proxy twice in a page",
                vec![page(2, &["a", "a"])],
                Err("proxy a is listed twice"),
            ),
            (
                "TotalCount never reached",
                vec![page(5, &["a", "b"]), page(5, &[])],
                Err("TotalCount 5 never reached"),
            ),
            (
                "TotalCount beyond the cap",
                vec![page(u64::MAX, &["a"])],
                Err("TotalCount 18446744073709551615 is more than the 100000 proxies"),
            ),
            (
                "TotalCount changes",
                vec![page(150, &hundred), page(151, &["x"])],
                Err("TotalCount changed from 150 to 151"),
            ),
            (
                "more than TotalCount",
                vec![page(2, &["a", "b", "c"])],
                Err("3 proxies listed for TotalCount 2"),
            ),
            ("no ProxyId", vec![page(1, &[""])], Err("without ProxyId")),
        ];
        for (name, pages, want) in cases {
            let got = read(pages);
            match (&got, want) {
                (Ok(n), Ok(w)) => assert_eq!(*n, w, "{name}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{name}: {e}"),
                _ => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_listing_stops_after_max_pages() {
        let mut l = Listing::default();
        let mut last = Ok(PageEnd::More);
        let mut pages = 0;
        // Pages of one new proxy each never reach a TotalCount of 100,000 in time.
        while pages <= MAX_PAGES + 1 {
            pages += 1;
            last = l.add_page(page(100_000, &[&format!("p{pages}")]));
            if last.is_err() {
                break;
            }
        }
        assert_eq!(pages, MAX_PAGES + 1);
        assert!(
            last.unwrap_err()
                .to_string()
                .contains("more than 1000 pages")
        );
    }

    #[test]
    fn envelope_parsing() {
        let ok = parse_envelope("A", br#"{"Response":{"RequestId":"r1","X":1}}"#).unwrap();
        assert_eq!(ok["X"], 1);
        let err = parse_envelope(
            "A",
            br#"{"Response":{"Error":{"Code":"InternalError","Message":"m"},"RequestId":"r2"}}"#,
        )
        .unwrap_err();
        let api = err.api().unwrap();
        assert_eq!(
            (
                api.code.as_str(),
                api.message.as_str(),
                api.request_id.as_str()
            ),
            ("InternalError", "m", "r2")
        );
        assert!(matches!(
            parse_envelope("A", b"<html>"),
            Err(CallError::Decode { .. })
        ));
        assert!(matches!(
            parse_envelope("A", br#"{"Other":{}}"#),
            Err(CallError::Decode { .. })
        ));
    }
}
