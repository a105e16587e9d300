//! The daemon's HTTP endpoint (default 127.0.0.1:9464): /metrics, /healthz, /readyz, and
//! read access to the decision log for `gaap-autoscaler log` while the daemon holds it,
//! and the control endpoint (`/control/*`, see [`super::control`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::control::{Access, ControlError, ControlPort, PauseRequest, ResumeRequest};

use super::stats::Stats;

/// Answers a decision-log read: (path, query string) → (HTTP status, JSON body).
pub type LogReader = Arc<dyn Fn(&str, &str) -> (u16, String) + Send + Sync>;

/// The warning for a listen address that is not loopback: the endpoint has no
/// authentication, and it serves the decision log (proxy ids, values, reasons).
pub fn listen_warning(addr: std::net::SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "listening on {addr}, which is not loopback: /metrics and the decision log (/log/decisions) have no authentication and are readable by anyone who can reach this address; listen on 127.0.0.1 and put an authenticating proxy in front if they must be reached from elsewhere"
        )
    })
}

#[derive(Clone)]
pub struct HttpState {
    pub stats: Arc<Stats>,
    /// Set once policies are loaded and the first fleet read succeeded.
    pub ready: Arc<AtomicBool>,
    pub log: Option<LogReader>,
    /// Called before rendering /metrics (e.g. to sample the API budget).
    pub before_scrape: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Pause, resume and status (none: `/control/*` answers 404).
    pub control: Option<Arc<dyn ControlPort>>,
    /// Who may pause and resume.
    pub access: Access,
    /// Under `[ha]`: this daemon's role for /readyz ("leader (a)", "follower of a").
    pub role: Option<Arc<dyn Fn() -> String + Send + Sync>>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/log/decisions", get(log))
        .route("/log/decisions/{id}", get(log))
        .route(super::control::PAUSE_PATH, post(pause))
        .route(super::control::RESUME_PATH, post(resume))
        .route(super::control::STATUS_PATH, get(status))
        .with_state(state)
}

async fn metrics(State(s): State<HttpState>) -> Response {
    if let Some(f) = &s.before_scrape {
        f();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.stats.render(),
    )
        .into_response()
}

async fn readyz(State(s): State<HttpState>) -> Response {
    if s.ready.load(Ordering::SeqCst) {
        // A follower is ready too: it takes over when the leader goes.
        match &s.role {
            Some(role) => (StatusCode::OK, format!("ready: {}\n", role())).into_response(),
            None => (StatusCode::OK, "ready\n").into_response(),
        }
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: policies or fleet not loaded yet\n",
        )
            .into_response()
    }
}

async fn log(State(s): State<HttpState>, uri: Uri) -> Response {
    let Some(reader) = &s.log else {
        return (StatusCode::NOT_FOUND, "no decision log\n").into_response();
    };
    let (code, body) = reader(uri.path(), uri.query().unwrap_or(""));
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn json_error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The control port after the access check; the 401/404 answer otherwise. The header's
/// value is compared, never logged.
fn authorized(s: &HttpState, headers: &HeaderMap) -> Result<Arc<dyn ControlPort>, Box<Response>> {
    let Some(control) = &s.control else {
        return Err(Box::new(json_error(
            404,
            "this daemon has no control endpoint",
        )));
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(why) = s.access.check(auth) {
        tracing::warn!(why, "control request refused");
        let mut r = json_error(401, why);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
        return Err(Box::new(r));
    }
    Ok(Arc::clone(control))
}

fn control_answer(result: Result<super::control::ControlStatus, ControlError>) -> Response {
    match result {
        Ok(status) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&status).unwrap_or_default(),
        )
            .into_response(),
        Err(e) => json_error(e.status(), &e.to_string()),
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(json_error(
            400,
            &format!("the request body is not valid: {e}"),
        ))
    })
}

async fn pause(
    State(s): State<HttpState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let control = match authorized(&s, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let req: PauseRequest = match parse_body(&body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    control_answer(control.pause(req).await)
}

async fn resume(
    State(s): State<HttpState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let control = match authorized(&s, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let req: ResumeRequest = match parse_body(&body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    control_answer(control.resume(req).await)
}

/// A read: open like /metrics and the decision log.
async fn status(State(s): State<HttpState>) -> Response {
    match &s.control {
        Some(c) => control_answer(Ok(c.status())),
        None => json_error(404, "this daemon has no control endpoint"),
    }
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: HttpState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_when_listen_is_not_loopback() {
        let cases = [
            ("127.0.0.1:9464", false),
            ("127.8.9.10:9464", false),
            ("[::1]:9464", false),
            ("0.0.0.0:9464", true),
            ("[::]:9464", true),
            ("10.1.2.3:9464", true),
            ("192.168.0.5:80", true),
        ];
        for (addr, warns) in cases {
            let w = listen_warning(addr.parse().unwrap());
            assert_eq!(w.is_some(), warns, "{addr}");
            if let Some(w) = w {
                assert!(w.contains(addr) && w.contains("no authentication"), "{w}");
            }
        }
    }
}
