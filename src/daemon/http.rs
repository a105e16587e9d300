//! The daemon's HTTP endpoint (default 127.0.0.1:9464): /metrics, /healthz, /readyz, and
//! read access to the decision log for `gaap-autoscaler log` while the daemon holds it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::stats::Stats;

/// Answers a decision-log read: (path, query string) → (HTTP status, JSON body).
pub type LogReader = Arc<dyn Fn(&str, &str) -> (u16, String) + Send + Sync>;

#[derive(Clone)]
pub struct HttpState {
    pub stats: Arc<Stats>,
    /// Set once policies are loaded and the first fleet read succeeded.
    pub ready: Arc<AtomicBool>,
    pub log: Option<LogReader>,
    /// Called before rendering /metrics (e.g. to sample the API budget).
    pub before_scrape: Option<Arc<dyn Fn() + Send + Sync>>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/log/decisions", get(log))
        .route("/log/decisions/{id}", get(log))
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
        (StatusCode::OK, "ready\n").into_response()
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
