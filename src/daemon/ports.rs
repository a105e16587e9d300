//! What the daemon needs from the outside world, as two small traits. The real adapters
//! (the GAAP client, Prometheus) implement them in `adapters.rs`; tests may use the
//! sandbox through the same adapters.

use std::collections::HashMap;
use std::future::Future;

use crate::core::{Ladder, Observation, ProxyState, ProxyStatus};
use crate::policy::Policy;
use crate::time::Timestamp;

/// A failure to reach or use an outside service (network, auth, throttling after retries).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{context}: {message}")]
pub struct PortError {
    pub context: String,
    /// The API error code when there is one (e.g. `AuthFailure.SignatureFailure`).
    pub code: Option<String>,
    pub message: String,
}

/// One ModifyProxyConfiguration to send.
#[derive(Clone, Debug, PartialEq)]
pub struct ModifyCall {
    pub proxy_id: String,
    pub bandwidth: Option<u32>,
    pub concurrent: Option<u32>,
    /// The decision id: every retry of this decision reuses it.
    pub client_token: String,
    pub billing_type: Option<i64>,
    /// Scale-ups go first through the API budget.
    pub urgent: bool,
}

/// The result of sending one decision (after the client's own retries).
#[derive(Clone, Debug, PartialEq)]
pub enum ModifyResult {
    /// Accepted. `confirmed_duplicate`: a retry got DuplicatedRequest and DescribeProxies
    /// confirmed the earlier attempt took effect.
    Applied {
        request_id: String,
        attempts: u32,
        confirmed_duplicate: bool,
    },
    /// The cloud said no, and retrying would not help (NotSupportScalar,
    /// InvalidParameterValue, AuthFailure...). The proxy is skipped until it changes.
    Rejected {
        code: String,
        message: String,
        request_id: Option<String>,
        attempts: u32,
    },
    /// Retries exhausted on a transient error (network, throttling, 5xx, InternalError).
    Failed {
        code: Option<String>,
        message: String,
        attempts: u32,
    },
}

/// The fleet side of the GAAP API.
pub trait Cloud: Send + Sync + 'static {
    /// Every proxy (DescribeProxies, paged).
    fn list_proxies(&self) -> impl Future<Output = Result<Vec<ProxyState>, PortError>> + Send;
    /// The current state of these proxies (DescribeProxies by id): to re-check a view
    /// that grew old before its changes were sent. The default reads the whole list.
    fn proxies(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<ProxyState>, PortError>> + Send {
        async move {
            let all = self.list_proxies().await?;
            Ok(all.into_iter().filter(|p| ids.contains(&p.id)).collect())
        }
    }
    /// The allowed values for a region pair (DescribeAccessRegionsByDestRegion).
    fn ladder(
        &self,
        access_region: &str,
        dest_region: &str,
    ) -> impl Future<Output = Result<Ladder, PortError>> + Send;
    /// Current statuses of some proxies (DescribeProxiesStatus).
    fn statuses(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, ProxyStatus>, PortError>> + Send;
    /// Sends one decision, rate-limited and retried safely by the client.
    fn modify(&self, call: ModifyCall) -> impl Future<Output = ModifyResult> + Send;
}

/// What one policy's signals say about its proxies at `now`.
#[derive(Clone, Debug, Default)]
pub struct PolicyReadings {
    pub per_proxy: HashMap<String, Observation>,
    /// Query failures by kind (for /metrics and logs); the affected readings are
    /// already `Missing { QueryError }` in `per_proxy`.
    pub query_errors: Vec<(String, String)>,
}

/// The metric side: one query per signal per evaluation, split by proxy.
pub trait Metrics: Send + Sync + 'static {
    fn observe(
        &self,
        policy: &Policy,
        proxies: &[String],
        now: Timestamp,
    ) -> impl Future<Output = PolicyReadings> + Send;

    /// Each proxy's highest demand in each whole hour of the policy's `[predictive]`
    /// lookback before `now`, by (proxy, signal name), each point at its hour's start:
    /// what the seasonal memory is warmed from when the daemon first meets a proxy. One
    /// bounded query per signal. Err (its text): the history could not be read; the
    /// memory then learns online.
    fn hourly_highs(
        &self,
        policy: &Policy,
        proxies: &[String],
        now: Timestamp,
    ) -> impl Future<Output = Result<History, String>> + Send;
}

/// Hourly highs by (proxy, signal name), see [`Metrics::hourly_highs`].
pub type History = HashMap<(String, String), Vec<(Timestamp, f64)>>;
