//! The Prometheus client against a hostile server written here (loopback only): an
//! endless or huge answer is cut at the limit, a redirect is refused (the URL's
//! credentials never go to another origin). Every call is bounded in time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Response};
use gaap_autoscaler::core::fixtures;
use gaap_autoscaler::metrics::{ClientOptions, MetricsError, Prometheus};
use gaap_autoscaler::time::Timestamp;

type Answer = dyn Fn() -> Response<Body> + Send + Sync;

struct Server {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<HeaderMap>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(answer: impl Fn() -> Response<Body> + Send + Sync + 'static) -> Server {
    let answer: Arc<Answer> = Arc::new(answer);
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let answer = answer.clone();
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(headers);
            answer()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        addr,
        requests,
        task,
    }
}

fn opts() -> ClientOptions {
    let mut o = ClientOptions::with_timeout(Duration::from_secs(10));
    o.retries = 0;
    o.deadline = Duration::from_secs(20);
    o
}

async fn fetch(prom: &Prometheus) -> Result<(), MetricsError> {
    let end = Timestamp::from_secs(1_795_939_200);
    let start = end - Duration::from_secs(3_600);
    let policies = [fixtures::policy()];
    let run = prom.fetch_range(&policies, &[], start, end, |_, _| {});
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("fetch_range did not return within 30 s")
        .map(|_| ())
}

/// A 200 JSON answer streaming `total` bytes of spaces, without a Content-Length.
fn streaming(total: usize) -> Response<Body> {
    let chunk = Bytes::from(vec![b' '; 64 * 1024]);
    let stream = futures_util::stream::iter(
        (0..total / chunk.len()).map(move |_| Ok::<_, std::convert::Infallible>(chunk.clone())),
    );
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

#[tokio::test]
async fn an_endless_or_huge_answer_is_refused_at_the_limit() {
    // 256 MiB streamed (bounded, so that a client without a limit fails by a decode
    // error instead of exhausting memory); the client reads at most 1 MiB.
    let srv = serve(|| streaming(256 * 1024 * 1024)).await;
    let url = format!("http://{}", srv.addr);
    let prom = Prometheus::new(&url, opts())
        .unwrap()
        .with_max_body(1024 * 1024);
    let err = fetch(&prom).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MetricsError::TooLarge { .. }), "{msg}");
    assert!(
        msg.contains(&url) && msg.contains("/api/v1/query_range") && msg.contains("1 MiB"),
        "names the server, the endpoint and the limit: {msg}"
    );
    assert_eq!(err.kind(), "too_large");
    assert!(!err.is_transient(), "not retried");

    // Announced by Content-Length, over the default limit (64 MiB): refused unread.
    let pad = Bytes::from(vec![b' '; 65 * 1024 * 1024]);
    let srv = serve(move || {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(pad.clone()))
            .unwrap()
    })
    .await;
    let prom = Prometheus::new(&format!("http://{}", srv.addr), opts()).unwrap();
    let err = fetch(&prom).await.unwrap_err();
    assert!(err.to_string().contains("64 MiB"), "{err}");
}

#[tokio::test]
async fn redirects_are_refused_and_credentials_go_nowhere_else() {
    let elsewhere = serve(|| streaming(0)).await;
    let target = format!("http://{}/api/v1/query_range", elsewhere.addr);
    for status in [301u16, 302, 303, 307, 308] {
        let to = target.clone();
        let srv = serve(move || {
            Response::builder()
                .status(status)
                .header("location", to.as_str())
                .body(Body::empty())
                .unwrap()
        })
        .await;
        let url = format!("http://scraper:s3cret@{}", srv.addr);
        let prom = Prometheus::new(&url, opts()).unwrap();
        let err = fetch(&prom).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, MetricsError::Redirect { .. }),
            "{status}: {msg}"
        );
        assert!(msg.contains(&target), "{status}: says where: {msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
        let signals = fixtures::policy().signals.len();
        assert_eq!(
            srv.requests.lock().unwrap().len(),
            signals,
            "{status}: once per signal"
        );
    }
    assert!(
        elsewhere.requests.lock().unwrap().is_empty(),
        "a redirect was followed to another origin"
    );
}
