//! The GAAP client against a hostile API: a small HTTP server written here (loopback
//! only) that answers what a broken or malicious endpoint might: pages that ignore
//! Offset, a TotalCount never reached, proxies listed twice, unreadable 200 answers to
//! ModifyProxyConfiguration, endless bodies, redirects to another origin.
//! Every test is bounded in time (a hang fails instead of running forever).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Response};
use gaap_autoscaler::cloud::client::{
    ClientConfig, GaapApi, GaapClient, ModifyRequest, ProxyQuery, RetryPolicy,
};
use gaap_autoscaler::cloud::credentials::Credentials;
use gaap_autoscaler::cloud::error::{CallError, OUTCOME_UNKNOWN};
use gaap_autoscaler::cloud::request::Endpoint;
use gaap_autoscaler::daemon::adapters::{GaapCloud, outcome_unknown};
use gaap_autoscaler::daemon::ports::{Cloud, ModifyCall, ModifyResult};
use gaap_autoscaler::ratelimit::{Priority, RateLimiter};
use serde_json::{Value, json};

/// What the hostile server answers to the `n`-th call (1-based) of `action`.
type Answer = dyn Fn(&str, &Value, usize) -> Response<Body> + Send + Sync;

#[derive(Clone)]
struct Hostile {
    answer: Arc<Answer>,
    calls: Arc<Mutex<Vec<(String, Value, HeaderMap)>>>,
}

struct Server {
    addr: std::net::SocketAddr,
    calls: Arc<Mutex<Vec<(String, Value, HeaderMap)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(
        answer: impl Fn(&str, &Value, usize) -> Response<Body> + Send + Sync + 'static,
    ) -> Server {
        let state = Hostile {
            answer: Arc::new(answer),
            calls: Arc::new(Mutex::new(Vec::new())),
        };
        let calls = state.calls.clone();
        let app = axum::Router::new()
            .fallback(
                |axum::extract::State(s): axum::extract::State<Hostile>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let action = headers
                        .get("X-TC-Action")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let params: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let n = {
                        let mut calls = s.calls.lock().unwrap();
                        calls.push((action.clone(), params.clone(), headers));
                        calls.iter().filter(|c| c.0 == action).count()
                    };
                    (s.answer)(&action, &params, n)
                },
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server { addr, calls, task }
    }

    fn client(&self, token: Option<&str>) -> GaapClient {
        client_for(&format!("http://{}", self.addr), token)
    }

    fn calls_of(&self, action: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.0 == action)
            .map(|c| c.1.clone())
            .collect()
    }
}

fn client_for(endpoint: &str, token: Option<&str>) -> GaapClient {
    let mut cfg = ClientConfig::new(Endpoint::parse(endpoint).unwrap());
    cfg.timeout = Duration::from_secs(10);
    cfg.retry = RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
    };
    let creds = Credentials::new(
        "AKIDhostileTestId000000000000000",
        "hostileTestKey0000000000000000",
        token.map(str::to_string),
    )
    .unwrap();
    GaapClient::new(cfg, creds, Arc::new(RateLimiter::new(20).unwrap())).unwrap()
}

fn json_answer(v: Value) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

fn proxy(id: &str, bw: u32, cc: u32) -> Value {
    json!({
        "ProxyId": id, "AccessRegion": "Guangzhou", "RealServerRegion": "Shanghai",
        "Bandwidth": bw, "Concurrent": cc, "Status": "RUNNING", "Scalarable": 1
    })
}

fn page(total: u64, ids: &[&str]) -> Response<Body> {
    let set: Vec<Value> = ids.iter().map(|i| proxy(i, 10, 2)).collect();
    json_answer(json!({"Response": {"TotalCount": total, "ProxySet": set, "RequestId": "r"}}))
}

/// Bounds a call that must return (a hang is a failure, not a stuck test run).
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: did not return within 20 s"))
}

// ---------------------------------------------------------------- item 4: listings

#[tokio::test]
async fn a_listing_that_ignores_offset_is_a_failed_read() {
    // Always the same 3 proxies, whatever the Offset, while TotalCount says 1000: before
    // the fix the client paged 334 times and returned 1,002 proxies (1,002 changes).
    let srv = Server::start(|_, _, _| page(1000, &["link-a", "link-b", "link-c"])).await;
    let c = srv.client(None);
    let err = bounded("listing", c.describe_proxies(&ProxyQuery::All))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Inconsistent { .. }),
        "{err}: want an inconsistent listing"
    );
    assert!(err.to_string().contains("listed twice"), "{err}");
    assert_eq!(
        srv.calls_of("DescribeProxies").len(),
        2,
        "stops at the repeat"
    );

    // Through the daemon's adapter: the pass gets an error (so every proxy holds), not
    // a fleet of 1,002.
    let cloud = GaapCloud {
        api: Arc::new(srv.client(None)),
    };
    let err = bounded("adapter", cloud.list_proxies()).await.unwrap_err();
    assert_eq!(err.code.as_deref(), Some("ClientError.InconsistentListing"));
}

#[tokio::test]
async fn a_total_count_never_reached_ends_the_listing() {
    // New proxies on every page and a TotalCount of u64::MAX: before the fix `--once`
    // never returned.
    let srv = Server::start(|_, params, _| {
        let offset = params["Offset"].as_u64().unwrap_or(0);
        let ids: Vec<String> = (offset..offset + 100)
            .map(|i| format!("link-{i}"))
            .collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        page(u64::MAX, &ids)
    })
    .await;
    let err = bounded(
        "listing",
        srv.client(None).describe_proxies(&ProxyQuery::All),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CallError::Inconsistent { .. }), "{err}");
    assert_eq!(srv.calls_of("DescribeProxies").len(), 1);

    // A plausible TotalCount, then an empty page before it is reached.
    let srv = Server::start(|_, params, _| match params["Offset"].as_u64() {
        Some(0) => page(7, &["link-a", "link-b"]),
        _ => page(7, &[]),
    })
    .await;
    let err = bounded(
        "listing",
        srv.client(None).describe_proxies(&ProxyQuery::All),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("TotalCount 7 never reached"),
        "{err}"
    );
}

#[tokio::test]
async fn a_proxy_listed_twice_is_a_failed_read() {
    let srv = Server::start(|_, _, _| page(2, &["link-a", "link-a"])).await;
    let c = srv.client(None);
    let err = bounded("listing", c.describe_proxies(&ProxyQuery::All))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("link-a is listed twice"), "{err}");
    // By ids too: an answer naming a proxy twice, or one not asked for.
    let ids = ProxyQuery::Ids(vec!["link-a".into()]);
    let err = bounded("by ids", c.describe_proxies(&ids))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");
    let srv = Server::start(|_, _, _| page(1, &["link-z"])).await;
    let err = bounded("by ids", srv.client(None).describe_proxies(&ids))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not asked for"), "{err}");
}

// ---------------------------------------------------------------- item 6: unknown outcomes

fn modify(token: &str) -> ModifyRequest {
    ModifyRequest {
        proxy_id: "link-a".into(),
        bandwidth: Some(50),
        concurrent: None,
        client_token: token.into(),
        billing_type: None,
    }
}

/// A fake GAAP with one proxy at 10 Mbps: ModifyProxyConfiguration applies the change
/// on the calls in `applies` and answers the calls in `garbled` with an unreadable 200.
fn unreliable(
    applies: &'static [usize],
    garbled: &'static [usize],
) -> impl Fn(&str, &Value, usize) -> Response<Body> + Send + Sync + 'static {
    let bandwidth = Arc::new(Mutex::new(10u32));
    let token_used = Arc::new(Mutex::new(false));
    move |action, params, n| match action {
        "DescribeProxies" => {
            let bw = *bandwidth.lock().unwrap();
            let set = vec![proxy("link-a", bw, 2)];
            json_answer(json!({"Response": {"TotalCount": 1, "ProxySet": set, "RequestId": "d"}}))
        }
        "ModifyProxyConfiguration" => {
            let mut used = token_used.lock().unwrap();
            if *used {
                return json_answer(json!({"Response": {"Error": {
                    "Code": "FailedOperation.DuplicatedRequest", "Message": "dup"},
                    "RequestId": format!("m{n}")}}));
            }
            if applies.contains(&n) {
                *bandwidth.lock().unwrap() = params["Bandwidth"].as_u64().unwrap() as u32;
                *used = true;
            }
            if garbled.contains(&n) {
                Response::builder()
                    .status(200)
                    .header("content-type", "text/html")
                    .body(Body::from("<html>upstream garbled</html>"))
                    .unwrap()
            } else {
                json_answer(json!({"Response": {"RequestId": format!("m{n}")}}))
            }
        }
        _ => json_answer(json!({"Response": {"RequestId": "x"}})),
    }
}

#[tokio::test]
async fn an_unreadable_200_is_confirmed_not_failed() {
    // Applied, but the answer is unreadable: DescribeProxies shows the change. Before the
    // fix this was a failure (ClientError.DecodeError) and the next pass decided again.
    let srv = Server::start(unreliable(&[1], &[1])).await;
    let out = bounded(
        "modify",
        srv.client(None)
            .modify_proxy_configuration(&modify("tok-1"), Priority::High),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.attempts, 1);
    assert_eq!(srv.calls_of("ModifyProxyConfiguration").len(), 1);
    assert_eq!(srv.calls_of("DescribeProxies").len(), 1, "confirmed");
}

#[tokio::test]
async fn an_unreadable_200_not_applied_is_sent_again_with_the_same_token() {
    // Not applied, unreadable; the second attempt applies and answers properly.
    let srv = Server::start(unreliable(&[2], &[1])).await;
    let out = bounded(
        "modify",
        srv.client(None)
            .modify_proxy_configuration(&modify("tok-2"), Priority::High),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.attempts, 2);
    let calls = srv.calls_of("ModifyProxyConfiguration");
    assert_eq!(calls.len(), 2);
    assert!(
        calls.iter().all(|c| c["ClientToken"] == "tok-2"),
        "{calls:?}"
    );

    // Applied by the first attempt but not yet visible to DescribeProxies would answer
    // DuplicatedRequest on the second: both ways one change. Never applied and never
    // readable: the outcome is unknown (not failed), after the attempts allowed.
    let srv = Server::start(unreliable(&[], &[1, 2, 3, 4, 5])).await;
    let err = bounded(
        "modify",
        srv.client(None)
            .modify_proxy_configuration(&modify("tok-3"), Priority::High),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error.code(), OUTCOME_UNKNOWN, "{err}");
    assert_eq!(err.attempts, 3);
    assert_eq!(srv.calls_of("ModifyProxyConfiguration").len(), 3);

    // The daemon's adapter passes it on as a failure with that code.
    let srv = Server::start(unreliable(&[], &[1, 2, 3, 4, 5])).await;
    let cloud = GaapCloud {
        api: Arc::new(srv.client(None)),
    };
    let call = ModifyCall {
        proxy_id: "link-a".into(),
        bandwidth: Some(50),
        concurrent: None,
        client_token: "tok-4".into(),
        billing_type: None,
        urgent: true,
    };
    match bounded("adapter", cloud.modify(call)).await {
        r @ ModifyResult::Failed { .. } => assert!(outcome_unknown(&r), "{r:?}"),
        other => panic!("want Failed with {OUTCOME_UNKNOWN}, got {other:?}"),
    }
}

// ---------------------------------------------------------------- item 7: bounded bodies

/// A 200 answer that streams `total` bytes of spaces (JSON whitespace: never a complete
/// value), without a Content-Length: "endless" as far as the client can tell.
fn streaming(total: usize) -> Response<Body> {
    let chunk = Bytes::from(vec![b' '; 64 * 1024]);
    let chunks = total / chunk.len();
    let stream = futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::convert::Infallible>(chunk.clone())),
    );
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

#[tokio::test]
async fn an_endless_or_huge_body_is_refused_at_the_limit() {
    // 256 MiB streamed (bounded here so that a client without a limit fails the test by
    // a decode error instead of exhausting memory).
    let srv = Server::start(|_, _, _| streaming(256 * 1024 * 1024)).await;
    let err = bounded(
        "endless body",
        srv.client(None).describe_proxies(&ProxyQuery::All),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CallError::TooLarge { .. }), "{msg}");
    assert!(
        msg.contains("DescribeProxies") && msg.contains(&srv.addr.to_string()),
        "names the action and the endpoint: {msg}"
    );
    assert!(msg.contains("8 MiB"), "names the limit: {msg}");

    // Announced by Content-Length: refused before reading.
    let srv = Server::start(|_, _, _| {
        json_answer(json!({"Response": {"RequestId": "r", "Pad": " ".repeat(9 * 1024 * 1024)}}))
    })
    .await;
    let err = bounded(
        "huge body",
        srv.client(None).describe_proxies(&ProxyQuery::All),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CallError::TooLarge { .. }), "{err}");
}

// ---------------------------------------------------------------- item 8: no redirects

#[tokio::test]
async fn redirects_are_refused_and_credentials_go_nowhere_else() {
    // The other origin records whatever reaches it.
    let elsewhere = Server::start(|_, _, _| page(0, &[])).await;
    let target = format!("http://{}/", elsewhere.addr);
    for status in [301u16, 302, 303, 307, 308] {
        let to = target.clone();
        let srv = Server::start(move |_, _, _| {
            Response::builder()
                .status(status)
                .header("location", to.as_str())
                .body(Body::empty())
                .unwrap()
        })
        .await;
        let c = srv.client(Some("secret-session-token"));
        let err = bounded("redirect", c.describe_proxies(&ProxyQuery::All))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CallError::Redirect { .. }), "{status}: {msg}");
        assert!(
            msg.contains(&status.to_string()) && msg.contains(&target),
            "{status}: says where it pointed: {msg}"
        );
        assert!(!msg.contains("secret-session-token"), "{msg}");
        // The signed call reached the endpoint, with its token, and nothing else did.
        let calls = srv.calls.lock().unwrap();
        assert_eq!(calls.len(), 1, "{status}: not retried");
        assert_eq!(calls[0].2["X-TC-Token"], "secret-session-token");
    }
    assert!(
        elsewhere.calls.lock().unwrap().is_empty(),
        "a redirect was followed to another origin"
    );
}
