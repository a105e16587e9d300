//! A local stand-in for the GAAP API (2018-05-29), faithful enough that the official SDKs
//! and this engine cannot tell it apart: TC3 signatures verified exactly, 20 requests per
//! second per action, ClientToken dedupe, allowed-value and Scalarable checks, ADJUSTING for
//! a while after a change, the real envelope with `Content-Type: application/json`, every
//! call recorded, faults injectable.
//!
//! Admin endpoints (outside the API, which is `POST /`):
//! - `GET /__sandbox/calls`: every call as a JSON array (`seq`, `action`, `time`, `params`,
//!   `error_code`, `request_id`, `fault`, `applied`); `DELETE` clears the record.
//! - `GET /__sandbox/faults`: the current fault spec; `POST` replaces it with the body (a
//!   spec, see [`faults`]) and restarts the per-action call numbering.
//! - `GET /__sandbox/clock`: the sandbox's time (Unix ms); `POST` with a duration (`250ms`)
//!   moves a manual clock ([`arrivals::ManualClock`], `sandbox --manual-clock`) forward.
//!
//! The 20/s check is the sandbox's own ([`arrivals`]), by arrival time on its clock.

pub mod arrivals;
pub mod cmd;
pub mod faults;
pub mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::cloud::signer::{self, SignInput, UNSIGNED_PAYLOAD};
use crate::fleet::Fleet;
use arrivals::{Arrivals, Clock, SystemClock};
use faults::FaultPlan;
use state::{Model, Rejection, reject};

/// The largest accepted difference between X-TC-Timestamp and the sandbox's clock.
pub const MAX_SKEW_SECS: i64 = 300;

/// How the sandbox behaves. `Debug` redacts the secret key.
#[derive(Clone)]
pub struct SandboxConfig {
    pub fleet: Fleet,
    pub secret_id: String,
    pub secret_key: String,
    /// How long a modified proxy stays ADJUSTING.
    pub adjusting: Duration,
    pub faults: FaultPlan,
    /// Requests per second per action (the GAAP default is 20).
    pub rate_per_second: u32,
    /// Where the sandbox reads the time: the system clock, or a manual one in tests.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("proxies", &self.fleet.proxies.len())
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"<redacted>")
            .field("adjusting", &self.adjusting)
            .field("faults", &self.faults.to_string())
            .field("rate_per_second", &self.rate_per_second)
            .finish()
    }
}

impl SandboxConfig {
    pub fn new(
        fleet: Fleet,
        secret_id: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> SandboxConfig {
        SandboxConfig {
            fleet,
            secret_id: secret_id.into(),
            secret_key: secret_key.into(),
            adjusting: Duration::from_secs(10),
            faults: FaultPlan::default(),
            rate_per_second: 20,
            clock: Arc::new(SystemClock),
        }
    }
}

/// One recorded call.
#[derive(Clone, Debug, Serialize)]
pub struct CallRecord {
    pub seq: u64,
    pub action: String,
    /// RFC 3339, millisecond precision.
    pub time: String,
    pub params: Value,
    pub error_code: Option<String>,
    pub request_id: String,
    pub fault: Option<String>,
    /// A ModifyProxyConfiguration that changed a proxy.
    pub applied: bool,
}

struct Inner {
    model: Model,
    calls: Vec<CallRecord>,
    faults: FaultPlan,
    counters: HashMap<String, u64>,
    arrivals: Arrivals,
    seq: u64,
}

struct App {
    secret_id: String,
    secret_key: String,
    rate: u32,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl App {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        crate::par::lock(&self.inner)
    }
}

/// Serves the sandbox on `listener` until the task is dropped or aborted.
pub async fn serve(
    config: SandboxConfig,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    serve_with_shutdown(config, listener, std::future::pending()).await
}

/// Serves until `shutdown` completes.
pub async fn serve_with_shutdown(
    config: SandboxConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The sandbox as an axum router (API at `POST /`, admin under `/__sandbox/`).
pub fn router(config: SandboxConfig) -> Router {
    let rate = config
        .rate_per_second
        .clamp(1, crate::ratelimit::MAX_PER_SECOND);
    let start = config.clock.now_ms();
    let app = Arc::new(App {
        secret_id: config.secret_id,
        secret_key: config.secret_key,
        rate,
        clock: config.clock,
        inner: Mutex::new(Inner {
            model: Model::new(config.fleet, config.adjusting, start),
            calls: Vec::new(),
            faults: config.faults,
            counters: HashMap::new(),
            arrivals: Arrivals::new(rate),
            seq: 0,
        }),
    });
    Router::new()
        .route("/", any(api))
        .route("/__sandbox/calls", get(get_calls).delete(clear_calls))
        .route("/__sandbox/faults", get(get_faults).post(set_faults))
        .route("/__sandbox/clock", get(get_clock).post(advance_clock))
        .with_state(app)
}

async fn get_calls(State(app): State<Arc<App>>) -> Response {
    let calls = app.lock().calls.clone();
    json_response(&serde_json::to_value(calls).unwrap_or(Value::Null))
}

async fn clear_calls(State(app): State<Arc<App>>) -> StatusCode {
    app.lock().calls.clear();
    StatusCode::NO_CONTENT
}

async fn get_clock(State(app): State<Arc<App>>) -> String {
    app.clock.now_ms().to_string()
}

async fn advance_clock(State(app): State<Arc<App>>, body: String) -> Response {
    let by = match crate::time::parse_duration(body.trim()) {
        Ok(d) => d,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("{e}; send a duration such as 250ms"),
            )
                .into_response();
        }
    };
    match app.clock.advance(by) {
        Ok(now) => (StatusCode::OK, now.to_string()).into_response(),
        Err(e) => (StatusCode::CONFLICT, e).into_response(),
    }
}

async fn get_faults(State(app): State<Arc<App>>) -> String {
    app.lock().faults.to_string()
}

async fn set_faults(State(app): State<Arc<App>>, body: String) -> Response {
    match FaultPlan::parse(&body) {
        Ok(plan) => {
            let mut inner = app.lock();
            inner.faults = plan;
            inner.counters.clear();
            (StatusCode::OK, inner.faults.to_string()).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

fn json_response(v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A uuid-shaped request id from a sequence number and the time.
fn request_id(seq: u64, now_ms: i64) -> String {
    let mut z = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (now_ms as u64).rotate_left(17);
    let mut next = || {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = z;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    let (a, b) = (next(), next());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

fn envelope(result: &Result<Map<String, Value>, Rejection>, request_id: &str) -> Value {
    let mut resp = match result {
        Ok(m) => m.clone(),
        Err(r) => {
            let mut m = Map::new();
            m.insert(
                "Error".into(),
                json!({"Code": r.code, "Message": r.message}),
            );
            m
        }
    };
    resp.insert("RequestId".into(), Value::String(request_id.to_string()));
    json!({ "Response": resp })
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Verifies the TC3 signature of a request exactly as received.
fn verify(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: i64,
) -> Result<(), Rejection> {
    let auth = header_str(headers, "authorization").ok_or_else(|| {
        reject(
            "AuthFailure.InvalidAuthorization",
            "The Authorization header is missing.",
        )
    })?;
    let parsed = signer::parse_authorization(auth).map_err(|why| {
        reject(
            "AuthFailure.InvalidAuthorization",
            format!("The Authorization header is malformed: {why}."),
        )
    })?;
    for required in ["content-type", "host"] {
        if !parsed.signed_headers.iter().any(|h| h == required) {
            return Err(reject(
                "AuthFailure.InvalidAuthorization",
                format!("SignedHeaders must include {required}."),
            ));
        }
    }
    let ts: i64 = header_str(headers, "x-tc-timestamp")
        .ok_or_else(|| {
            reject(
                "MissingParameter",
                "The request is missing the X-TC-Timestamp header.",
            )
        })?
        .trim()
        .parse()
        .map_err(|_| reject("InvalidParameter", "X-TC-Timestamp must be Unix seconds."))?;
    if (now_ms / 1000 - ts).abs() > MAX_SKEW_SECS {
        return Err(reject(
            "AuthFailure.SignatureExpire",
            format!(
                "Signature expired: X-TC-Timestamp {ts} is more than {MAX_SKEW_SECS} s from the server time {}.",
                now_ms / 1000
            ),
        ));
    }
    if parsed.secret_id != app.secret_id {
        return Err(reject(
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found.",
        ));
    }
    let host = header_str(headers, "host").unwrap_or("");
    let canonical_host = signed_host(&parsed.service, host)?;
    let mut signed: Vec<(&str, &str)> = Vec::new();
    for name in &parsed.signed_headers {
        let value = if name == "host" {
            canonical_host
        } else {
            header_str(headers, name).ok_or_else(|| {
                reject(
                    "AuthFailure.SignatureFailure",
                    format!("The signed header `{name}` is not in the request."),
                )
            })?
        };
        signed.push((name.as_str(), value));
    }
    let payload_hash = if header_str(headers, "x-tc-content-sha256") == Some(UNSIGNED_PAYLOAD) {
        signer::sha256_hex(UNSIGNED_PAYLOAD.as_bytes())
    } else {
        signer::sha256_hex(body)
    };
    let input = SignInput {
        service: &parsed.service,
        method: method.as_str(),
        query: uri.query().unwrap_or(""),
        headers: &signed,
        payload: body,
        timestamp: ts,
    };
    let expected =
        signer::sign_with_payload_hash(&app.secret_id, &app.secret_key, &input, &payload_hash);
    let ok = parsed.date == expected.date
        && constant_time_eq(parsed.signature.as_bytes(), expected.signature.as_bytes());
    if ok {
        Ok(())
    } else {
        Err(reject(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        ))
    }
}

/// The `host` value of the one canonical request a signature is checked against, chosen by
/// the credential scope's service (part of the signed string, so a client cannot pick the
/// rule without the key):
///
/// - service `gaap`: the `Host` header exactly as received, port included. What the Python
///   and Go SDKs, tccli and this project's client sign (the endpoint string is both the Host
///   header and the signed host), and what the TC3 documentation describes.
/// - service equal to the `Host` header up to its first `.` (`127` for `127.0.0.1:9099`):
///   the Node.js SDK's rule for a custom endpoint (`service = endpoint.split(".")[0]`, signed
///   host = the URL's hostname, without the port, while the header carries it). The signed
///   host is then the `Host` header without its port.
/// - anything else: `AuthFailure.SignatureFailure`.
///
/// For the real endpoint (`gaap.tencentcloudapi.com`, no port) both rules give the same
/// canonical request, so the second accepts nothing the first would refuse there.
pub fn signed_host<'a>(service: &str, host: &'a str) -> Result<&'a str, Rejection> {
    if service == "gaap" {
        return Ok(host);
    }
    let first_label = host.split('.').next().unwrap_or("");
    if !service.is_empty() && service == first_label {
        return Ok(strip_port(host));
    }
    Err(reject(
        "AuthFailure.SignatureFailure",
        format!(
            "The credential scope's service `{service}` is neither `gaap` nor the endpoint's first label; sign with service `gaap`."
        ),
    ))
}

/// `127.0.0.1:9099` → `127.0.0.1`, `[::1]:9099` → `[::1]`, `localhost` unchanged.
fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']')) =>
        {
            h
        }
        _ => host,
    }
}

/// The value of `key` in an `application/x-www-form-urlencoded` string, undecoded (enough
/// for action names and for telling a v1-signed request).
fn form_value<'a>(form: &'a str, key: &str) -> Option<&'a str> {
    form.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn api(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrival = app.clock.now_ms();
    // Signature v1 and GET carry the action and the signature as form parameters (the query
    // string, or a form-urlencoded POST body).
    let form: &str = if method == Method::GET {
        uri.query().unwrap_or("")
    } else if header_str(&headers, "content-type")
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
    {
        std::str::from_utf8(&body).unwrap_or("")
    } else {
        ""
    };
    let v1_method = form_value(form, "SignatureMethod")
        .map(str::to_string)
        .or_else(|| form_value(form, "Signature").map(|_| "HmacSHA1".to_string()));
    let action = header_str(&headers, "x-tc-action")
        .or_else(|| form_value(form, "Action"))
        .unwrap_or("")
        .to_string();
    let params: Value = if form.is_empty() {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        // Recorded without the signature and the key id.
        Value::Object(
            form.split('&')
                .filter_map(|pair| pair.split_once('='))
                .filter(|(k, _)| !matches!(*k, "Signature" | "SecretId" | "Token"))
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect(),
        )
    };
    let (seq, injection) = {
        let mut inner = app.lock();
        inner.seq += 1;
        let n = {
            let c = inner.counters.entry(action.clone()).or_insert(0);
            *c += 1;
            *c
        };
        (inner.seq, inner.faults.injection(&action, n))
    };
    if !injection.delay.is_zero() {
        tokio::time::sleep(injection.delay).await;
    }
    let now = app.clock.now_ms();
    let rid = request_id(seq, now);
    let mut applied = false;
    let result: Result<Map<String, Value>, Rejection> = (|| {
        if let Some(code) = &injection.error {
            return Err(reject(code, "Injected by the sandbox fault plan."));
        }
        if let Some(sm) = &v1_method {
            return Err(reject(
                "UnsupportedOperation",
                format!(
                    "The sandbox verifies signature v3 (TC3-HMAC-SHA256) only, not v1 ({sm}); the real API serves both. Set the SDK's sign method to TC3-HMAC-SHA256 (the SDKs' default)."
                ),
            ));
        }
        if method == Method::GET {
            return Err(reject(
                "UnsupportedOperation",
                "The sandbox serves POST with a JSON body only, not GET; the real API serves both. Set the SDK's request method to POST (the SDKs' default).",
            ));
        }
        if method != Method::POST {
            return Err(reject(
                "UnsupportedProtocol",
                "Only GET and POST are supported (the sandbox serves POST with a JSON body).",
            ));
        }
        if action.is_empty() {
            return Err(reject(
                "MissingParameter",
                "The request is missing the X-TC-Action header.",
            ));
        }
        verify(&app, &method, &uri, &headers, &body, now)?;
        if header_str(&headers, "x-tc-version") != Some(crate::cloud::request::VERSION) {
            return Err(reject(
                "NoSuchVersion",
                "The API version must be 2018-05-29.",
            ));
        }
        if !state::ACTIONS.contains(&action.as_str()) {
            return Err(reject(
                "InvalidAction",
                format!("The action `{action}` does not exist."),
            ));
        }
        let ct = header_str(&headers, "content-type").unwrap_or("");
        if !ct.to_ascii_lowercase().starts_with("application/json") {
            return Err(reject(
                "InvalidParameter",
                "Content-Type must be application/json.",
            ));
        }
        let params = params
            .as_object()
            .ok_or_else(|| reject("InvalidParameter", "The body must be a JSON object."))?;
        let mut inner = app.lock();
        let rate = app.rate;
        if !inner.arrivals.admit(&action, arrival) {
            return Err(reject(
                "RequestLimitExceeded",
                format!("Your current request frequency for {action} exceeds {rate} per second."),
            ));
        }
        let handled = inner.model.handle(&action, params, now)?;
        applied = handled.applied;
        Ok(handled.response)
    })();
    let record = CallRecord {
        seq,
        action: action.clone(),
        time: crate::time::Timestamp(arrival).to_rfc3339(),
        params,
        error_code: result.as_ref().err().map(|r| r.code.clone()),
        request_id: rid.clone(),
        fault: injection.label(),
        applied,
    };
    tracing::debug!(
        action,
        seq,
        error_code = record.error_code.as_deref().unwrap_or(""),
        "sandbox call"
    );
    app.lock().calls.push(record);
    if injection.drop && injection.error.is_none() {
        // Handled (a change is applied), but the answer is lost: the connection is closed
        // mid-response.
        let broken = futures_util::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "sandbox fault: drop",
            ))
        });
        return Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(broken))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    json_response(&envelope(&result, &rid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_look_like_uuids_and_differ() {
        let a = request_id(1, 1_000);
        let b = request_id(2, 1_000);
        assert_ne!(a, b);
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{a}");
        assert!(a.bytes().all(|c| c == b'-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_signed_host_is_chosen_by_the_scope_service() {
        let cases: &[(&str, &str, Result<&str, &str>)] = &[
            // Python, Go, tccli, this client: the Host header as received.
            ("gaap", "127.0.0.1:9099", Ok("127.0.0.1:9099")),
            (
                "gaap",
                "gaap.tencentcloudapi.com",
                Ok("gaap.tencentcloudapi.com"),
            ),
            // Node.js: service = the endpoint up to its first dot, host without the port.
            ("127", "127.0.0.1:9099", Ok("127.0.0.1")),
            ("localhost:9099", "localhost:9099", Ok("localhost")),
            ("[::1]:9099", "[::1]:9099", Ok("[::1]")),
            // Anything else is refused, whatever the signature.
            ("cvm", "127.0.0.1:9099", Err("AuthFailure.SignatureFailure")),
            ("127", "10.0.0.1:9099", Err("AuthFailure.SignatureFailure")),
            ("", "", Err("AuthFailure.SignatureFailure")),
        ];
        for (service, host, want) in cases {
            let got = signed_host(service, host).map_err(|r| r.code);
            assert_eq!(got, want.map_err(String::from), "{service} {host}");
        }
    }

    fn test_app() -> App {
        App {
            secret_id: "AKIDtest".into(),
            secret_key: "testkey".into(),
            rate: 20,
            clock: Arc::new(SystemClock),
            inner: Mutex::new(Inner {
                model: Model::new(state::tests::fleet(), Duration::from_secs(1), 0),
                calls: Vec::new(),
                faults: FaultPlan::default(),
                counters: HashMap::new(),
                arrivals: Arrivals::new(20),
                seq: 0,
            }),
        }
    }

    /// A request signed over `signed_host` with `service`, sent with `Host: sent_host`.
    fn signed_request(service: &str, signed_host: &str, sent_host: &str, ts: i64) -> HeaderMap {
        let body = br#"{"ProxyIds":["link-a"]}"#;
        let sig = signer::sign_with_payload_hash(
            "AKIDtest",
            "testkey",
            &SignInput {
                service,
                method: "POST",
                query: "",
                headers: &[("content-type", "application/json"), ("host", signed_host)],
                payload: body,
                timestamp: ts,
            },
            &signer::sha256_hex(body),
        );
        let mut h = HeaderMap::new();
        h.insert("authorization", sig.authorization.parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        h.insert("host", sent_host.parse().unwrap());
        h.insert("x-tc-timestamp", ts.to_string().parse().unwrap());
        h
    }

    #[test]
    fn verify_accepts_each_sdk_convention_and_nothing_mixed() {
        let app = test_app();
        let ts = 1_795_925_378;
        let body = br#"{"ProxyIds":["link-a"]}"#;
        let uri: Uri = "/".parse().unwrap();
        let check = |service: &str, signed: &str, sent: &str| {
            let h = signed_request(service, signed, sent, ts);
            verify(&app, &Method::POST, &uri, &h, body, ts * 1000).map_err(|r| r.code)
        };
        let fail = Err("AuthFailure.SignatureFailure".to_string());
        // Python/Go: service gaap, the port signed.
        assert_eq!(check("gaap", "127.0.0.1:9099", "127.0.0.1:9099"), Ok(()));
        // Node.js: service 127, the port not signed.
        assert_eq!(check("127", "127.0.0.1", "127.0.0.1:9099"), Ok(()));
        // Mixed: each convention's service with the other's host is refused.
        assert_eq!(check("gaap", "127.0.0.1", "127.0.0.1:9099"), fail);
        assert_eq!(check("127", "127.0.0.1:9099", "127.0.0.1:9099"), fail);
        // Another host than the one sent, and another service.
        assert_eq!(check("gaap", "127.0.0.1:9098", "127.0.0.1:9099"), fail);
        assert_eq!(check("cvm", "127.0.0.1:9099", "127.0.0.1:9099"), fail);
    }

    #[test]
    fn form_values_and_ports() {
        let f = "Action=DescribeProxies&SignatureMethod=HmacSHA256&Signature=abc%3D";
        assert_eq!(form_value(f, "Action"), Some("DescribeProxies"));
        assert_eq!(form_value(f, "Signature"), Some("abc%3D"));
        assert_eq!(form_value(f, "Nonce"), None);
        assert_eq!(form_value("", "Action"), None);
        for (h, want) in [
            ("127.0.0.1:9099", "127.0.0.1"),
            ("localhost", "localhost"),
            ("[::1]:80", "[::1]"),
            ("::1", "::1"),
            ("host:", "host:"),
        ] {
            assert_eq!(strip_port(h), want, "{h}");
        }
    }

    #[test]
    fn envelope_shapes() {
        let ok = envelope(&Ok(Map::new()), "r");
        assert_eq!(ok, json!({"Response": {"RequestId": "r"}}));
        let err = envelope(&Err(reject("InternalError", "m")), "r");
        assert_eq!(
            err,
            json!({"Response": {"Error": {"Code": "InternalError", "Message": "m"}, "RequestId": "r"}})
        );
    }
}
