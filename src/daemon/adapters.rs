//! The daemon's ports implemented by the real parts: the GAAP client (or the sandbox
//! behind the same client) and Prometheus.

use std::collections::HashMap;
use std::sync::Arc;

use super::ports::{Cloud, History, Metrics, ModifyCall, ModifyResult, PolicyReadings, PortError};
use crate::cloud::client::{GaapApi, ModifyFailure, ModifyOutcome, ModifyRequest, ProxyQuery};
use crate::cloud::error::{CallError, OUTCOME_UNKNOWN, RetryClass};
use crate::core::{Ladder, ProxyState, ProxyStatus};
use crate::metrics::Prometheus;
use crate::policy::Policy;
use crate::ratelimit::Priority;
use crate::time::Timestamp;

/// [`Cloud`] over any [`GaapApi`] (the real client, pointed at Tencent Cloud or the sandbox).
pub struct GaapCloud {
    pub api: Arc<dyn GaapApi>,
}

/// The port's error: the API's code, or the client's own (`ClientError.NetworkError`,
/// `ClientError.InconsistentListing`, ...) when the API did not answer with one.
fn port_error(context: &str, e: &CallError) -> PortError {
    PortError {
        context: context.to_string(),
        code: Some(e.code().to_string()),
        message: e.to_string(),
    }
}

/// True when a sent decision may or may not have been applied: the client could not read
/// the API's answer and DescribeProxies could not settle it
/// ([`crate::cloud::error::OUTCOME_UNKNOWN`], reported as [`ModifyResult::Failed`]). Such
/// a decision is not a failure: keep it pending and confirm or re-send it with the same
/// ClientToken (as start-up reconciliation does) before deciding that proxy again.
pub fn outcome_unknown(result: &ModifyResult) -> bool {
    matches!(result, ModifyResult::Failed { code: Some(c), .. } if c == OUTCOME_UNKNOWN)
}

/// The client's answer to a modify call, as the engine sees it: applied; rejected (the API
/// said no and retrying would not help); or failed (transient errors exhausted, no answer,
/// or an outcome unknown). Pure: table-tested below.
pub fn modify_result(answer: Result<ModifyOutcome, ModifyFailure>) -> ModifyResult {
    match answer {
        Ok(o) => ModifyResult::Applied {
            request_id: o.request_id,
            attempts: o.attempts,
            confirmed_duplicate: o.confirmed_duplicate,
        },
        Err(f) => {
            let (code, request_id, message) = match &f.error {
                CallError::Api(a) => (
                    Some(a.code.clone()),
                    Some(a.request_id.clone()),
                    a.message.clone(),
                ),
                // May have been applied: the code tells the engine so (see
                // `outcome_unknown`).
                e @ CallError::OutcomeUnknown { .. } => {
                    (Some(OUTCOME_UNKNOWN.to_string()), None, e.to_string())
                }
                other => (None, None, other.to_string()),
            };
            let api_said_no = f.error.api().is_some();
            match (f.error.retry_class(), code) {
                (RetryClass::NoRetry, Some(code)) if api_said_no => ModifyResult::Rejected {
                    code,
                    message,
                    request_id,
                    attempts: f.attempts,
                },
                (_, code) => ModifyResult::Failed {
                    code,
                    message,
                    attempts: f.attempts,
                },
            }
        }
    }
}

impl Cloud for GaapCloud {
    async fn list_proxies(&self) -> Result<Vec<ProxyState>, PortError> {
        let list = self
            .api
            .describe_proxies(&ProxyQuery::All)
            .await
            .map_err(|e| port_error("DescribeProxies", &e))?;
        Ok(list.iter().map(|p| p.to_state()).collect())
    }

    async fn proxies(&self, ids: &[String]) -> Result<Vec<ProxyState>, PortError> {
        let list = self
            .api
            .describe_proxies(&ProxyQuery::Ids(ids.to_vec()))
            .await
            .map_err(|e| port_error("DescribeProxies", &e))?;
        Ok(list.iter().map(|p| p.to_state()).collect())
    }

    async fn ladder(&self, access_region: &str, dest_region: &str) -> Result<Ladder, PortError> {
        let regions = self
            .api
            .describe_access_regions_by_dest_region(dest_region)
            .await
            .map_err(|e| port_error("DescribeAccessRegionsByDestRegion", &e))?;
        let r = regions
            .iter()
            .find(|r| r.region_id == access_region)
            .ok_or_else(|| PortError {
                context: "DescribeAccessRegionsByDestRegion".into(),
                code: None,
                message: format!(
                    "no allowed values for access region {access_region} towards {dest_region}"
                ),
            })?;
        Ok(Ladder::new(
            r.bandwidth_list.clone(),
            r.concurrent_list.clone(),
        ))
    }

    async fn statuses(&self, ids: &[String]) -> Result<HashMap<String, ProxyStatus>, PortError> {
        let list = self
            .api
            .describe_proxies_status(ids)
            .await
            .map_err(|e| port_error("DescribeProxiesStatus", &e))?;
        Ok(list
            .into_iter()
            .map(|s| (s.instance_id, ProxyStatus::parse(&s.status)))
            .collect())
    }

    async fn modify(&self, call: ModifyCall) -> ModifyResult {
        let req = ModifyRequest {
            proxy_id: call.proxy_id,
            bandwidth: call.bandwidth,
            concurrent: call.concurrent,
            client_token: call.client_token,
            billing_type: call.billing_type,
        };
        let priority = if call.urgent {
            Priority::High
        } else {
            Priority::Low
        };
        modify_result(self.api.modify_proxy_configuration(&req, priority).await)
    }
}

impl Metrics for Prometheus {
    async fn observe(&self, policy: &Policy, proxies: &[String], now: Timestamp) -> PolicyReadings {
        let o = Prometheus::observe(self, policy, now).await;
        PolicyReadings {
            per_proxy: proxies
                .iter()
                .map(|id| (id.clone(), o.for_proxy(id)))
                .collect(),
            query_errors: o
                .errors
                .iter()
                .map(|e| {
                    (
                        e.error.kind().to_string(),
                        format!("{}: {}", e.signal, e.error),
                    )
                })
                .collect(),
        }
    }

    async fn hourly_highs(
        &self,
        policy: &Policy,
        proxies: &[String],
        now: Timestamp,
    ) -> Result<History, String> {
        Prometheus::hourly_highs(self, policy, proxies, now)
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::error::ApiError;

    fn api(code: &str) -> CallError {
        CallError::Api(ApiError {
            code: code.into(),
            message: "m".into(),
            request_id: "r-1".into(),
        })
    }

    /// Which answers are rejections (the proxy is skipped until it changes) and which are
    /// failures (nothing learned: the next pass may try again), and which code each keeps.
    #[test]
    fn modify_answers_map_to_rejected_failed_or_applied() {
        let cases: Vec<Case> = vec![
            (
                "accepted",
                Ok(ModifyOutcome {
                    request_id: "r-0".into(),
                    attempts: 2,
                    confirmed_duplicate: true,
                }),
                "applied",
                None,
            ),
            (
                "NotSupportScalar",
                Err(fail(api("FailedOperation.NotSupportScalar"))),
                "rejected",
                Some("FailedOperation.NotSupportScalar"),
            ),
            (
                "AuthFailure",
                Err(fail(api("AuthFailure.SignatureFailure"))),
                "rejected",
                Some("AuthFailure.SignatureFailure"),
            ),
            (
                "InvalidParameterValue",
                Err(fail(api("InvalidParameterValue"))),
                "rejected",
                Some("InvalidParameterValue"),
            ),
            (
                "throttled after retries",
                Err(fail(api("RequestLimitExceeded"))),
                "failed",
                Some("RequestLimitExceeded"),
            ),
            (
                "InternalError after retries",
                Err(fail(api("InternalError"))),
                "failed",
                Some("InternalError"),
            ),
            (
                "network",
                Err(fail(CallError::Network {
                    action: "ModifyProxyConfiguration".into(),
                    message: "reset".into(),
                })),
                "failed",
                None,
            ),
            (
                "HTTP 502",
                Err(fail(CallError::HttpStatus {
                    action: "ModifyProxyConfiguration".into(),
                    status: 502,
                })),
                "failed",
                None,
            ),
            (
                "outcome unknown",
                Err(fail(CallError::OutcomeUnknown {
                    action: "ModifyProxyConfiguration".into(),
                    message: "unreadable".into(),
                })),
                "failed",
                Some(OUTCOME_UNKNOWN),
            ),
        ];
        for (what, answer, kind, code) in cases {
            let r = modify_result(answer);
            let (got_kind, got_code) = match &r {
                ModifyResult::Applied { .. } => ("applied", None),
                ModifyResult::Rejected { code, .. } => ("rejected", Some(code.as_str())),
                ModifyResult::Failed { code, .. } => ("failed", code.as_deref()),
            };
            assert_eq!((got_kind, got_code), (kind, code), "{what}: {r:?}");
            assert_eq!(outcome_unknown(&r), code == Some(OUTCOME_UNKNOWN), "{what}");
        }
    }

    type Case = (
        &'static str,
        Result<ModifyOutcome, ModifyFailure>,
        &'static str,
        Option<&'static str>,
    );

    fn fail(error: CallError) -> ModifyFailure {
        ModifyFailure { error, attempts: 3 }
    }
}
