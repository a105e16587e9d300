//! Errors as values. A Tencent Cloud rejection is an [`ApiError`] (code, message,
//! RequestId); anything that kept us from reading an answer is a [`CallError`] variant.
//! Both say whether a retry is safe via [`RetryClass`]. No variant ever carries a secret.

/// What the client may do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryClass {
    /// Transient: retry with backoff and the same ClientToken.
    Retry,
    /// The request was already applied by an earlier attempt (`FailedOperation.DuplicatedRequest`).
    Duplicate,
    /// Permanent for this request: record it and stop.
    NoRetry,
}

/// The `Response.Error` of the envelope.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message} (RequestId {request_id})")]
pub struct ApiError {
    pub code: String,
    pub message: String,
    pub request_id: String,
}

impl ApiError {
    /// `RequestLimitExceeded*`, `InternalError` and `ServiceUnavailable` are transient;
    /// `FailedOperation.DuplicatedRequest` means "already done"; everything else (AuthFailure*,
    /// NotSupportScalar, AccountBalanceInsufficient, InvalidParameterValue*, ResourceNotFound,
    /// …) is not retried.
    pub fn retry_class(&self) -> RetryClass {
        retry_class_for_code(&self.code)
    }
}

/// The retry class of an error code.
pub fn retry_class_for_code(code: &str) -> RetryClass {
    let transient = code == "RequestLimitExceeded"
        || code.starts_with("RequestLimitExceeded.")
        || code == "InternalError"
        || code.starts_with("InternalError.")
        || code == "ServiceUnavailable";
    if transient {
        RetryClass::Retry
    } else if code == "FailedOperation.DuplicatedRequest" {
        RetryClass::Duplicate
    } else {
        RetryClass::NoRetry
    }
}

/// The code of [`CallError::OutcomeUnknown`]: a ModifyProxyConfiguration that may or may
/// not have been applied (its answer was unreadable and DescribeProxies could not settle
/// it). The decision must stay pending, to be confirmed or re-sent with its ClientToken.
pub const OUTCOME_UNKNOWN: &str = "ClientError.OutcomeUnknown";

/// One failed call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The API answered with an error in the envelope.
    #[error("{0}")]
    Api(ApiError),
    /// No answer: connect, timeout, connection reset, truncated body.
    #[error("network error calling {action}: {message}")]
    Network { action: String, message: String },
    /// An HTTP status other than 200.
    #[error("HTTP {status} from {action}")]
    HttpStatus { action: String, status: u16 },
    /// A 200 answer whose body is not the expected envelope.
    #[error("unexpected response to {action}: {message}")]
    Decode { action: String, message: String },
    /// The request could not be built (bad endpoint, bad parameters).
    #[error("{0}")]
    Request(String),
    /// A 3xx answer: not followed (a signed call goes only to the configured endpoint, and
    /// credentials never go anywhere else).
    #[error(
        "{action}: the endpoint answered HTTP {status} redirecting to {location}; redirects are not followed: set `endpoint` to the API's own address"
    )]
    Redirect {
        action: String,
        status: u16,
        location: String,
    },
    /// The answer is longer than the client reads.
    #[error(
        "the answer to {action} from {endpoint} is larger than {}; refused (is `endpoint` the GAAP API?)",
        crate::net::format_bytes(*limit)
    )]
    TooLarge {
        action: String,
        endpoint: String,
        limit: usize,
    },
    /// A listing that contradicts itself (a proxy twice, an ignored Offset, a TotalCount
    /// never reached, too many pages): treated as a failed read, so the proxies hold.
    #[error("inconsistent {action} answer: {message}; treated as a failed read")]
    Inconsistent { action: String, message: String },
    /// A modifying call whose effect could not be established: the API may or may not have
    /// applied it. Not a failure: the change must be confirmed (DescribeProxies) or
    /// re-sent with the same ClientToken, never decided again under a new token.
    #[error("the outcome of {action} is unknown: {message}")]
    OutcomeUnknown { action: String, message: String },
}

impl CallError {
    pub fn retry_class(&self) -> RetryClass {
        match self {
            CallError::Api(e) => e.retry_class(),
            CallError::Network { .. } => RetryClass::Retry,
            CallError::HttpStatus { status, .. } if *status >= 500 => RetryClass::Retry,
            CallError::HttpStatus { .. }
            | CallError::Decode { .. }
            | CallError::Request(_)
            | CallError::Redirect { .. }
            | CallError::TooLarge { .. }
            | CallError::Inconsistent { .. }
            | CallError::OutcomeUnknown { .. } => RetryClass::NoRetry,
        }
    }
    /// The Tencent error code, or a client-side pseudo code (`ClientError.NetworkError`, …).
    pub fn code(&self) -> &str {
        match self {
            CallError::Api(e) => &e.code,
            CallError::Network { .. } => "ClientError.NetworkError",
            CallError::HttpStatus { .. } => "ClientError.HttpStatusCodeError",
            CallError::Decode { .. } => "ClientError.DecodeError",
            CallError::Request(_) => "ClientError.InvalidRequest",
            CallError::Redirect { .. } => "ClientError.Redirect",
            CallError::TooLarge { .. } => "ClientError.ResponseTooLarge",
            CallError::Inconsistent { .. } => "ClientError.InconsistentListing",
            CallError::OutcomeUnknown { .. } => OUTCOME_UNKNOWN,
        }
    }
    pub fn request_id(&self) -> Option<&str> {
        match self {
            CallError::Api(e) => Some(&e.request_id),
            _ => None,
        }
    }
    /// True for an answer that arrived (HTTP 200) but could not be read: for a modifying
    /// call, the change may have been applied.
    pub fn is_unreadable_answer(&self) -> bool {
        matches!(self, CallError::Decode { .. } | CallError::TooLarge { .. })
    }
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            CallError::Api(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classes() {
        use RetryClass::*;
        let cases = [
            ("RequestLimitExceeded", Retry),
            ("RequestLimitExceeded.UinLimitExceeded", Retry),
            ("RequestLimitExceeded.GlobalRegionUinLimitExceeded", Retry),
            ("InternalError", Retry),
            ("FailedOperation.DuplicatedRequest", Duplicate),
            ("FailedOperation.NotSupportScalar", NoRetry),
            ("FailedOperation.AccountBalanceInsufficient", NoRetry),
            ("AuthFailure.SignatureFailure", NoRetry),
            ("AuthFailure.SignatureExpire", NoRetry),
            ("ResourceNotFound", NoRetry),
            ("InvalidParameterValue", NoRetry),
            ("InvalidParameterValue.InvalidBandwidth", NoRetry),
            ("RequestLimitExceededX", NoRetry),
        ];
        for (code, want) in cases {
            assert_eq!(retry_class_for_code(code), want, "{code}");
        }
        let net = CallError::Network {
            action: "A".into(),
            message: "reset".into(),
        };
        assert_eq!(net.retry_class(), Retry);
        assert_eq!(
            CallError::HttpStatus {
                action: "A".into(),
                status: 502
            }
            .retry_class(),
            Retry
        );
        assert_eq!(
            CallError::HttpStatus {
                action: "A".into(),
                status: 404
            }
            .retry_class(),
            NoRetry
        );
    }
}
