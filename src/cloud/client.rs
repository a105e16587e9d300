//! The GAAP client: signed POSTs over reqwest (rustls), the shared per-action budget, and
//! safe retries. Retries reuse the same body, hence the same `ClientToken`; a
//! `FailedOperation.DuplicatedRequest` means an earlier attempt took effect and is confirmed
//! with `DescribeProxies` instead of being reported as a failure.

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
}

impl ClientConfig {
    pub fn new(endpoint: Endpoint) -> ClientConfig {
        ClientConfig {
            endpoint,
            region: None,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

/// The real client. Cheap to share behind an `Arc`; the limiter is shared with every other
/// caller of the same account.
pub struct GaapClient {
    http: reqwest::Client,
    config: ClientConfig,
    credentials: Credentials,
    limiter: Arc<RateLimiter>,
    jitter_state: AtomicU64,
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
        })
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
        let bytes = resp.bytes().await.map_err(network)?;
        if status != 200 {
            return Err(CallError::HttpStatus {
                action: action.to_string(),
                status,
            });
        }
        parse_envelope(action, &bytes)
    }

    /// Calls with retries on transient errors; returns the parsed Response and the attempts.
    async fn call_retrying<T: DeserializeOwned>(
        &self,
        action: &str,
        params: &impl Serialize,
        priority: Priority,
    ) -> Result<(T, u32), (CallError, u32)> {
        let body =
            serde_json::to_vec(params).map_err(|e| (CallError::Request(e.to_string()), 0))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Held until the call has ended: the budget counts the request until then.
            let sent = self.limiter.acquire(action, priority).await;
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
            if err.retry_class() != RetryClass::Retry || attempt >= self.config.retry.max_attempts {
                return Err((err, attempt));
            }
            tokio::time::sleep(backoff(&self.config.retry, attempt, self.next_jitter())).await;
        }
    }

    async fn describe_proxies_impl(&self, query: &ProxyQuery) -> Result<Vec<ProxyInfo>, CallError> {
        let mut out = Vec::new();
        match query {
            ProxyQuery::Ids(ids) => {
                for chunk in ids.chunks(100) {
                    let req = DescribeProxiesRequest {
                        proxy_ids: Some(chunk.to_vec()),
                        limit: Some(100),
                        ..Default::default()
                    };
                    let (page, _): (DescribeProxiesResponse, _) = self
                        .call_retrying("DescribeProxies", &req, Priority::Normal)
                        .await
                        .map_err(|(e, _)| e)?;
                    out.extend(page.proxy_set);
                }
            }
            ProxyQuery::Tags(_) | ProxyQuery::All => {
                let tag_set = match query {
                    ProxyQuery::Tags(t) => Some(t.clone()),
                    _ => None,
                };
                let mut offset = 0u64;
                loop {
                    let req = DescribeProxiesRequest {
                        offset: Some(offset),
                        limit: Some(100),
                        tag_set: tag_set.clone(),
                        ..Default::default()
                    };
                    let (page, _): (DescribeProxiesResponse, _) = self
                        .call_retrying("DescribeProxies", &req, Priority::Normal)
                        .await
                        .map_err(|(e, _)| e)?;
                    let n = page.proxy_set.len() as u64;
                    out.extend(page.proxy_set);
                    offset += n;
                    if n == 0 || offset >= page.total_count {
                        break;
                    }
                }
            }
        }
        Ok(out)
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
        match self
            .call_retrying::<ModifyProxyConfigurationResponse>(
                "ModifyProxyConfiguration",
                &wire,
                priority,
            )
            .await
        {
            Ok((resp, attempts)) => Ok(ModifyOutcome {
                request_id: resp.request_id,
                attempts,
                confirmed_duplicate: false,
            }),
            Err((CallError::Api(dup), attempts)) if dup.retry_class() == RetryClass::Duplicate => {
                self.confirm_duplicate(request, dup, attempts).await
            }
            Err((error, attempts)) => Err(ModifyFailure { error, attempts }),
        }
    }

    /// After DuplicatedRequest: the change is confirmed when DescribeProxies shows the
    /// requested values (or the proxy is still ADJUSTING towards them).
    async fn confirm_duplicate(
        &self,
        request: &ModifyRequest,
        dup: ApiError,
        attempts: u32,
    ) -> Result<ModifyOutcome, ModifyFailure> {
        let query = ProxyQuery::Ids(vec![request.proxy_id.clone()]);
        let proxies = match self.describe_proxies_impl(&query).await {
            Ok(p) => p,
            Err(error) => return Err(ModifyFailure { error, attempts }),
        };
        let matches = proxies
            .iter()
            .find(|p| p.id() == request.proxy_id)
            .is_some_and(|p| {
                request.bandwidth.is_none_or(|b| b == p.bandwidth)
                    && request.concurrent.is_none_or(|c| c == p.concurrent)
            });
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
        let s = |k: &str| {
            err.get(k)
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string()
        };
        return Err(CallError::Api(ApiError {
            code: s("Code"),
            message: s("Message"),
            request_id: resp
                .get("RequestId")
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string(),
        }));
    }
    Ok(resp)
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
