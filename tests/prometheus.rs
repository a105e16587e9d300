//! The Prometheus metric source against a real Prometheus (2 days of 1-minute samples,
//! backfilled with promtool, served on a free loopback port), plus a few fake servers for
//! failures a real one does not produce on demand (5xx, hanging, request counting).

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gaap_autoscaler::core::{NoData, Reading, fixtures};
use gaap_autoscaler::metrics::{
    ClientOptions, MetricsError, Prometheus, check_policy_queries_blocking, parse_float,
    trace_to_csv,
};
use gaap_autoscaler::policy::{Policy, Schedule, Severity, Signal};
use gaap_autoscaler::time::Timestamp;
use gaap_autoscaler::trace::Trace;
use support::prom::{OpenMetrics, PromServer};

/// The data ends here (2026-09-21T14:40:00Z); every query passes an explicit time.
const END: i64 = 1_790_006_400;
const START: i64 = END - 2 * 86_400;
const BW: &str = "qce_qaap_outbandwidth_max";
const CONN: &str = "qce_qaap_connum_max";
const GAP: (i64, i64) = (END - 6 * 3600, END - 4 * 3600);

fn bw_ok1(t: i64) -> f64 {
    100.0 + 50.0 * ((t - START) as f64 / 3600.0).sin()
}
fn bw_ok2(t: i64) -> f64 {
    30.0 + ((t / 60) % 17) as f64
}
fn minutes(from: i64, to: i64) -> impl Iterator<Item = i64> {
    (from..=to).step_by(60)
}

/// Several proxies; one with a 2-hour gap; NaN, a negative and +Inf in the last hour of
/// three others; one proxy with two series (another label differs).
fn data() -> OpenMetrics {
    let mut om = OpenMetrics::new();
    let late = |t: i64| t >= END - 3600;
    om.series(
        BW,
        &[("channel_id", "link-ok000001")],
        minutes(START, END).map(|t| (t, bw_ok1(t))),
    )
    .series(
        BW,
        &[("channel_id", "link-ok000002")],
        minutes(START, END).map(|t| (t, bw_ok2(t))),
    )
    .series(
        BW,
        &[("channel_id", "link-gap00003")],
        minutes(START, END)
            .filter(|t| !(GAP.0..GAP.1).contains(t))
            .map(|t| (t, 42.0)),
    )
    .series(
        BW,
        &[("channel_id", "link-nan00004")],
        minutes(START, END).map(|t| (t, if late(t) { f64::NAN } else { 10.0 })),
    )
    .series(
        BW,
        &[("channel_id", "link-neg00005")],
        minutes(START, END).map(|t| (t, if late(t) { -5.0 } else { 10.0 })),
    )
    .series(
        BW,
        &[("channel_id", "link-inf00006")],
        minutes(START, END).map(|t| (t, if late(t) { f64::INFINITY } else { 10.0 })),
    )
    .series(
        BW,
        &[("channel_id", "link-dup00007"), ("region", "a")],
        minutes(START, END).map(|t| (t, 1.0)),
    )
    .series(
        BW,
        &[("channel_id", "link-dup00007"), ("region", "b")],
        minutes(START, END).map(|t| (t, 2.0)),
    );
    om.series(
        CONN,
        &[("channel_id", "link-ok000001")],
        minutes(START, END).map(|t| (t, 20_000.0 + ((t / 60) % 100) as f64)),
    )
    .series(
        CONN,
        &[("channel_id", "link-ok000002")],
        minutes(START, END).map(|t| (t, 5_000.0)),
    );
    om
}

fn server() -> &'static PromServer {
    static SERVER: OnceLock<PromServer> = OnceLock::new();
    SERVER.get_or_init(|| PromServer::start(&data()))
}

fn client(url: &str) -> Prometheus {
    Prometheus::new(url, ClientOptions::default()).unwrap()
}

fn signal(name: &str, query: &str, max_age: Duration) -> Signal {
    Signal {
        name: name.into(),
        query: query.into(),
        proxy_label: "channel_id".into(),
        max_age,
    }
}

/// The fixture policy with plain selectors (so duplicated series stay visible).
fn policy(interval: Duration, signals: &[Signal]) -> Policy {
    let mut p = fixtures::policy();
    p.schedule = Schedule::Interval(interval);
    p.signals = signals
        .iter()
        .map(|s| (s.name.clone(), s.clone()))
        .collect();
    p
}

fn plain_policy(max_age: Duration) -> Policy {
    policy(
        Duration::from_secs(30),
        &[
            signal("bandwidth", BW, max_age),
            signal("connections", CONN, max_age),
        ],
    )
}

fn missing(reason: NoData) -> Reading {
    Reading::Missing { reason }
}

#[tokio::test]
async fn observe_classifies_every_proxy_at_an_explicit_time() {
    let prom = client(&server().url);
    let now = Timestamp::from_secs(END - 1800);
    let obs = prom
        .observe(&plain_policy(Duration::from_secs(300)), now)
        .await;
    assert!(obs.errors.is_empty(), "{:?}", obs.errors);
    let bw = |id: &str| obs.for_proxy(id).signals["bandwidth"].clone();
    let at = Timestamp::from_secs(END - 1800);
    assert_eq!(
        bw("link-ok000001"),
        Reading::Value {
            value: bw_ok1(END - 1800),
            at
        }
    );
    assert_eq!(
        bw("link-ok000002"),
        Reading::Value {
            value: bw_ok2(END - 1800),
            at
        }
    );
    assert_eq!(bw("link-gap00003"), Reading::Value { value: 42.0, at });
    assert_eq!(bw("link-nan00004"), missing(NoData::NotANumber));
    assert_eq!(
        bw("link-neg00005"),
        missing(NoData::Negative { value: -5.0 })
    );
    assert_eq!(bw("link-inf00006"), missing(NoData::Infinite));
    assert_eq!(
        bw("link-dup00007"),
        missing(NoData::MultipleSeries { count: 2 })
    );
    assert_eq!(bw("link-absent99"), missing(NoData::NoSeries));
    let conn = obs.for_proxy("link-ok000001").signals["connections"].clone();
    assert_eq!(
        conn,
        Reading::Value {
            value: 20_000.0 + (((END - 1800) / 60) % 100) as f64,
            at
        }
    );
    // A proxy present in one signal only has NoSeries for the other.
    assert_eq!(
        obs.for_proxy("link-nan00004").signals["connections"],
        missing(NoData::NoSeries)
    );
    // Only usable readings carry numbers.
    for proxy in obs.per_proxy.keys() {
        for r in obs.for_proxy(proxy).signals.values() {
            if let Some(v) = r.value() {
                assert!(v.is_finite() && v >= 0.0, "{proxy}: {r:?}");
            }
        }
    }
}

/// The daemon's warm-up of the seasonal memory: one point per whole hour of the lookback,
/// each that hour's maximum (computed here from the generated samples), at the hour's
/// start; an hour without data has no point; a proxy with two series teaches nothing.
#[tokio::test]
async fn hourly_highs_are_each_whole_hours_maximum() {
    let prom = client(&server().url);
    let mut p = policy(
        Duration::from_secs(60),
        &[
            signal("bandwidth", BW, Duration::from_secs(300)),
            signal("connections", CONN, Duration::from_secs(300)),
        ],
    );
    p.predictive.lookback = Duration::from_secs(86_400);
    let now_s = END - 1800;
    let this_hour = now_s - now_s % 3600;
    let ids: Vec<String> = ["link-ok000001", "link-gap00003", "link-dup00007"]
        .map(String::from)
        .to_vec();
    let h = prom
        .hourly_highs(&p, &ids, Timestamp::from_secs(now_s))
        .await
        .unwrap();
    let key = |proxy: &str, sig: &str| (proxy.to_string(), sig.to_string());
    let ok = &h[&key("link-ok000001", "bandwidth")];
    assert_eq!(ok.len(), 24, "{ok:?}");
    for (i, &(at, v)) in ok.iter().enumerate() {
        let hour = this_hour - 86_400 + 3600 * i as i64;
        assert_eq!(at, Timestamp::from_secs(hour));
        let want = (0..60)
            .map(|m| bw_ok1(hour + 60 * m))
            .fold(f64::MIN, f64::max);
        assert!((v - want).abs() < 1e-9, "hour {hour}: {v} != {want}");
    }
    let conns = &h[&key("link-ok000001", "connections")];
    assert_eq!(conns.len(), 24);
    for &(at, v) in conns {
        let want = (0..60)
            .map(|m| 20_000.0 + (((at.secs() + 60 * m) / 60) % 100) as f64)
            .fold(f64::MIN, f64::max);
        assert_eq!(v, want, "{at:?}");
    }
    // The gap (08:40 to 10:40) leaves hour 09 without any sample.
    let gap = &h[&key("link-gap00003", "bandwidth")];
    let hours: Vec<i64> = gap.iter().map(|(t, _)| t.secs()).collect();
    let empty_hour = GAP.0 - GAP.0 % 3600 + 3600;
    assert!(!hours.contains(&empty_hour), "{hours:?}");
    assert_eq!(gap.len(), 23);
    assert!(gap.iter().all(|&(_, v)| v == 42.0));
    assert!(h[&key("link-dup00007", "bandwidth")].is_empty());
    // Proxies not asked for are not kept.
    assert!(!h.contains_key(&key("link-ok000002", "bandwidth")));
}

#[tokio::test]
async fn staleness_follows_the_newest_evaluation_with_a_value() {
    let prom = client(&server().url);
    let last_raw = GAP.0 - 60;
    // Prometheus 2.42 keeps a sample visible for 5 minutes (lookback, both ends
    // inclusive): the query has a value at evaluations up to last_raw + 300s.
    let last_visible = last_raw + 300;

    // 4 minutes after the last visible evaluation, max_age 2m: stale, with its age.
    let now = Timestamp::from_secs(last_visible + 240);
    let obs = prom
        .observe(&plain_policy(Duration::from_secs(120)), now)
        .await;
    assert_eq!(
        obs.for_proxy("link-gap00003").signals["bandwidth"],
        missing(NoData::Stale { age_ms: 240_000 })
    );
    // The same moment with max_age 5m: the last visible value still counts (a CSV
    // export read at this time gives the same).
    let obs = prom
        .observe(&plain_policy(Duration::from_secs(300)), now)
        .await;
    assert_eq!(
        obs.for_proxy("link-gap00003").signals["bandwidth"],
        Reading::Value {
            value: 42.0,
            at: Timestamp::from_secs(last_visible)
        }
    );
    // Long after: nothing in the window at all.
    let now = Timestamp::from_secs(GAP.0 + 3600);
    let obs = prom
        .observe(&plain_policy(Duration::from_secs(300)), now)
        .await;
    assert!(!obs.per_proxy.contains_key("link-gap00003"));
    assert_eq!(
        obs.for_proxy("link-gap00003").signals["bandwidth"],
        missing(NoData::NoSeries)
    );
    // Other proxies are unaffected.
    assert_eq!(
        obs.for_proxy("link-ok000002").signals["bandwidth"].value(),
        Some(bw_ok2(GAP.0 + 3600))
    );
}

#[tokio::test]
async fn a_syntax_error_surfaces_prometheus_message_and_spares_other_signals() {
    let prom = client(&server().url);
    let p = policy(
        Duration::from_secs(30),
        &[
            signal(
                "bandwidth",
                "max by (channel_id) (qce_qaap_outbandwidth_max",
                Duration::from_secs(300),
            ),
            signal("connections", CONN, Duration::from_secs(300)),
        ],
    );
    let obs = prom.observe(&p, Timestamp::from_secs(END)).await;
    assert_eq!(obs.errors.len(), 1);
    let err = &obs.errors[0];
    assert_eq!(
        (err.policy.as_str(), err.signal.as_str()),
        ("web", "bandwidth")
    );
    assert_eq!(err.error.kind(), "bad_query");
    let msg = err.error.to_string();
    assert!(
        msg.contains("parse error") && msg.contains("unclosed left parenthesis"),
        "{msg}"
    );
    match &obs.for_proxy("link-ok000001").signals["bandwidth"] {
        Reading::Missing {
            reason: NoData::QueryError { kind, message },
        } => {
            assert_eq!(kind, "bad_query");
            assert!(message.contains("unclosed left parenthesis"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        obs.for_proxy("link-ok000001").signals["connections"]
            .value()
            .is_some()
    );
}

#[tokio::test]
async fn prometheus_down_is_a_connect_error_for_every_signal() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: connection refused
    let mut opts = ClientOptions::with_timeout(Duration::from_secs(2));
    opts.backoff = Duration::from_millis(10);
    let prom = Prometheus::new(&format!("http://127.0.0.1:{port}"), opts).unwrap();
    let obs = prom
        .observe(
            &plain_policy(Duration::from_secs(300)),
            Timestamp::from_secs(END),
        )
        .await;
    assert_eq!(obs.errors.len(), 2);
    for e in &obs.errors {
        assert_eq!(e.error.kind(), "connect", "{}", e.error);
        assert!(e.error.to_string().contains("refused"), "{}", e.error);
    }
    let r = &obs.for_proxy("link-ok000001").signals["bandwidth"];
    assert!(
        matches!(r, Reading::Missing { reason: NoData::QueryError { kind, .. } } if kind == "connect")
    );
}

/// A fake HTTP server: answers every request with `respond(body)`, counts requests and
/// keeps their bodies. `None` = accept and never answer.
struct Fake {
    url: String,
    requests: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<String>>>,
}

fn fake(respond: Option<&'static str>) -> Fake {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (r, b) = (requests.clone(), bodies.clone());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            let Some(text) = read_request(&mut conn) else {
                continue;
            };
            r.fetch_add(1, Ordering::SeqCst);
            b.lock().unwrap().push(text);
            match respond {
                Some(resp) => {
                    let _ = conn.write_all(resp.as_bytes());
                }
                None => held.push(conn),
            }
        }
    });
    Fake {
        url,
        requests,
        bodies,
    }
}

fn read_request(conn: &mut std::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + len {
                return Some(text[head_end + 4..].to_string());
            }
        }
    }
}

fn response(status: &str, content_type: &str, body: &str) -> &'static str {
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    Box::leak(text.into_boxed_str())
}

fn empty_matrix() -> &'static str {
    response(
        "200 OK",
        "application/json",
        r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
    )
}

fn quick_opts() -> ClientOptions {
    // Generous timeouts (a loaded CI machine), short backoffs.
    ClientOptions {
        timeout: Duration::from_secs(5),
        retries: 2,
        backoff: Duration::from_millis(20),
        deadline: Duration::from_secs(20),
        concurrency: 4,
    }
}

#[tokio::test]
async fn one_request_per_signal_with_the_evaluation_time() {
    let f = fake(Some(empty_matrix()));
    let prom = Prometheus::new(&f.url, quick_opts()).unwrap();
    let now = Timestamp::from_secs(END);
    let obs = prom
        .observe(&plain_policy(Duration::from_secs(300)), now)
        .await;
    assert!(obs.errors.is_empty(), "{:?}", obs.errors);
    assert_eq!(f.requests.load(Ordering::SeqCst), 2);
    let bodies = f.bodies.lock().unwrap().clone();
    for b in &bodies {
        assert!(b.contains(&format!("end={END}")), "{b}");
        assert!(b.contains(&format!("start={}", END - 630)), "{b}");
        assert!(b.contains("step=30"), "{b}");
    }
}

#[tokio::test]
async fn server_errors_are_retried_and_bad_queries_are_not() {
    let f = fake(Some(response(
        "503 Service Unavailable",
        "text/plain",
        "upstream overloaded",
    )));
    let prom = Prometheus::new(&f.url, quick_opts()).unwrap();
    let p = policy(
        Duration::from_secs(30),
        &[signal("bandwidth", BW, Duration::from_secs(300))],
    );
    let obs = prom.observe(&p, Timestamp::from_secs(END)).await;
    assert_eq!(obs.errors.len(), 1);
    assert_eq!(
        obs.errors[0].error,
        MetricsError::Http {
            status: 503,
            body: "upstream overloaded".into()
        }
    );
    assert_eq!(
        f.requests.load(Ordering::SeqCst),
        3,
        "1 attempt + 2 retries"
    );

    let f = fake(Some(response(
        "400 Bad Request",
        "application/json",
        r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: boom"}"#,
    )));
    let prom = Prometheus::new(&f.url, quick_opts()).unwrap();
    let obs = prom.observe(&p, Timestamp::from_secs(END)).await;
    assert_eq!(
        obs.errors[0].error,
        MetricsError::BadQuery {
            message: "1:5: parse error: boom".into()
        }
    );
    assert_eq!(f.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_hanging_prometheus_costs_at_most_the_deadline() {
    let f = fake(None);
    let mut opts = quick_opts();
    opts.timeout = Duration::from_secs(1);
    opts.deadline = Duration::from_millis(2500);
    let prom = Prometheus::new(&f.url, opts).unwrap();
    // A guard so a regression fails instead of hanging the suite.
    let obs = tokio::time::timeout(
        Duration::from_secs(30),
        prom.observe(
            &plain_policy(Duration::from_secs(300)),
            Timestamp::from_secs(END),
        ),
    )
    .await
    .expect("observe must end by its deadline");
    assert_eq!(obs.errors.len(), 2);
    for e in &obs.errors {
        assert_eq!(e.error.kind(), "timeout", "{}", e.error);
    }
    // Retried, but bounded: at most 1 + retries attempts per signal.
    let n = f.requests.load(Ordering::SeqCst);
    assert!((2..=6).contains(&n), "{n} requests");
}

/// Independent small range queries (plain HTTP, 1,000 points each) over the parts of
/// `[start, end]`: proxy -> time (ms) -> values (several when series are duplicated).
async fn small_queries(
    url: &str,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
) -> BTreeMap<String, BTreeMap<i64, Vec<f64>>> {
    let http = reqwest::Client::new();
    let mut out: BTreeMap<String, BTreeMap<i64, Vec<f64>>> = BTreeMap::new();
    let mut s = start.div_euclid(step) * step;
    if s < start {
        s += step;
    }
    while s <= end {
        let e = (s + 999 * step).min(end);
        let body: serde_json::Value = http
            .get(format!("{url}/api/v1/query_range"))
            .query(&[
                ("query", query.to_string()),
                ("start", s.to_string()),
                ("end", e.to_string()),
                ("step", step.to_string()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{body}");
        for series in body["data"]["result"].as_array().unwrap() {
            let id = series["metric"]["channel_id"].as_str().unwrap().to_string();
            for v in series["values"].as_array().unwrap() {
                let t = (v[0].as_f64().unwrap() * 1000.0).round() as i64;
                let x = parse_float(v[1].as_str().unwrap()).unwrap();
                out.entry(id.clone())
                    .or_default()
                    .entry(t)
                    .or_default()
                    .push(x);
            }
        }
        s = e + step;
    }
    out
}

fn same_value(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

#[tokio::test]
async fn a_chunked_range_equals_small_queries_over_its_parts() {
    let srv = server();
    let prom = client(&srv.url);
    // 10 s over 2 days: 17,281 points per series, more than one request allows.
    let p = policy(
        Duration::from_secs(10),
        &[signal("bandwidth", BW, Duration::from_secs(300))],
    );
    let totals = Mutex::new(Vec::new());
    let trace = prom
        .fetch_range(
            &[p],
            &[],
            Timestamp::from_secs(START),
            Timestamp::from_secs(END),
            |done, total| totals.lock().unwrap().push((done, total)),
        )
        .await
        .unwrap();
    let totals = totals.into_inner().unwrap();
    assert_eq!(totals.first(), Some(&(0, 2)), "2 chunks for 17,281 points");
    assert_eq!(totals.last(), Some(&(2, 2)));

    let want = small_queries(&srv.url, BW, START, END, 10).await;
    assert_eq!(
        trace
            .series
            .keys()
            .map(|(p, _)| p.clone())
            .collect::<Vec<_>>(),
        want.keys().cloned().collect::<Vec<_>>()
    );
    for (proxy, points) in &want {
        let s = trace.series(proxy, "bandwidth").unwrap();
        let times: Vec<i64> = points.keys().copied().collect();
        assert_eq!(s.times, times, "{proxy}");
        for ((t, vs), got) in points.iter().zip(&s.values) {
            // Several series for one proxy at one time: stored as NaN (ambiguous).
            let expect = if vs.len() > 1 { f64::NAN } else { vs[0] };
            assert!(same_value(*got, expect), "{proxy} at {t}: {got} vs {vs:?}");
        }
    }
    assert_eq!(
        trace.series("link-ok000001", "bandwidth").unwrap().len(),
        17_281
    );
    assert!(
        trace
            .series("link-dup00007", "bandwidth")
            .unwrap()
            .values
            .iter()
            .all(|v| v.is_nan())
    );
}

#[tokio::test]
async fn policies_sharing_a_signal_get_both_grids_and_conflicts_are_refused() {
    let prom = client(&server().url);
    let a = policy(
        Duration::from_secs(60),
        &[signal("bandwidth", BW, Duration::from_secs(300))],
    );
    let mut b = policy(
        Duration::from_secs(45),
        &[signal("bandwidth", BW, Duration::from_secs(300))],
    );
    b.name = "batch".into();
    let (start, end) = (END - 3600, END);
    let trace = prom
        .fetch_range(
            &[a.clone(), b.clone()],
            &["link-ok000001".to_string()],
            Timestamp::from_secs(start),
            Timestamp::from_secs(end),
            |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(trace.series.len(), 1, "only the listed proxy is kept");
    let s = trace.series("link-ok000001", "bandwidth").unwrap();
    let want: Vec<i64> = (start..=end)
        .filter(|t| t % 60 == 0 || t % 45 == 0)
        .map(|t| t * 1000)
        .collect();
    assert_eq!(s.times, want);
    for (t, v) in s.times.iter().zip(&s.values) {
        // The latest raw sample (minute grid) not after t.
        let raw = (t / 1000).div_euclid(60) * 60;
        assert_eq!(*v, bw_ok1(raw), "at {t}");
    }

    b.signals.get_mut("bandwidth").unwrap().query = format!("max by (channel_id) ({BW})");
    let err = prom
        .fetch_range(
            &[a, b],
            &[],
            Timestamp::from_secs(start),
            Timestamp::from_secs(end),
            |_, _| {},
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "signal_conflict");
    assert!(err.to_string().contains("`web` and `batch`"), "{err}");
}

#[tokio::test]
async fn a_cron_policy_is_sampled_at_each_fire_time() {
    use std::str::FromStr;
    let prom = client(&server().url);
    let mut p = plain_policy(Duration::from_secs(300));
    let expr = "30 */5 * * * *"; // 30 s past every fifth minute
    p.schedule = Schedule::Cron(gaap_autoscaler::policy::CronSpec {
        expr: expr.into(),
        schedule: cron::Schedule::from_str(expr).unwrap(),
    });
    let (start, end) = (END - 3600, END);
    let trace = prom
        .fetch_range(
            &[p],
            &["link-ok000002".to_string()],
            Timestamp::from_secs(start),
            Timestamp::from_secs(end),
            |_, _| {},
        )
        .await
        .unwrap();
    let s = trace.series("link-ok000002", "bandwidth").unwrap();
    // A 60 s grid anchored at the first fire time: every fire time is a sample time.
    let want: Vec<i64> = (start..=end)
        .filter(|t| t % 60 == 30)
        .map(|t| t * 1000)
        .collect();
    assert_eq!(s.times, want);
    for fire in (start..=end).filter(|t| t % 300 == 30) {
        let r = s.reading_at(Timestamp::from_secs(fire), 300_000);
        assert_eq!(r.value(), Some(bw_ok2(fire - 30)), "at {fire}");
    }
}

/// A tiny reader of the DESIGN.md metrics CSV (Unix seconds; no quoting needed here).
fn parse_csv(text: &str) -> Trace {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,proxy_id,signal,value"));
    let mut trace = Trace::default();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 4, "{line}");
        let secs: f64 = f[0].parse().unwrap();
        trace.series_mut(f[1], f[2]).push(
            Timestamp((secs * 1000.0).round() as i64),
            parse_float(f[3]).unwrap(),
        );
    }
    trace
}

#[tokio::test]
async fn a_range_trace_survives_csv_unchanged() {
    let prom = client(&server().url);
    let trace = prom
        .fetch_range(
            &[plain_policy(Duration::from_secs(300))],
            &[],
            Timestamp::from_secs(END - 2 * 3600),
            Timestamp::from_secs(END),
            |_, _| {},
        )
        .await
        .unwrap();
    // NaN, +Inf, a negative and a duplicated proxy are all in there.
    let all: Vec<f64> = trace
        .series
        .values()
        .flat_map(|s| s.values.clone())
        .collect();
    assert!(all.iter().any(|v| v.is_nan()) && all.contains(&f64::INFINITY) && all.contains(&-5.0));
    assert_eq!(trace.series.len(), 7 + 2);
    let back = parse_csv(&trace_to_csv(&trace));
    assert_eq!(
        back.series.keys().collect::<Vec<_>>(),
        trace.series.keys().collect::<Vec<_>>()
    );
    for (key, s) in &trace.series {
        let b = &back.series[key];
        assert_eq!(b.times, s.times, "{key:?}");
        assert!(
            s.values
                .iter()
                .zip(&b.values)
                .all(|(x, y)| same_value(*x, *y)),
            "{key:?}"
        );
    }
    // The simulation's reading rule over the trace matches what observe() reports.
    let now = Timestamp::from_secs(END - 1800);
    let obs = prom
        .observe(&plain_policy(Duration::from_secs(300)), now)
        .await;
    for ((proxy, signal), s) in &back.series {
        let from_trace = s.reading_at(now, 300_000);
        let from_observe = obs.for_proxy(proxy).signals[signal].clone();
        match (&from_trace, &from_observe) {
            // The trace keeps an ambiguous time as NaN; observe names the reason.
            (
                Reading::Missing {
                    reason: NoData::NotANumber,
                },
                Reading::Missing {
                    reason: NoData::MultipleSeries { .. },
                },
            ) => {}
            _ => assert_eq!(from_trace, from_observe, "{proxy}/{signal}"),
        }
    }
}

#[tokio::test]
async fn validation_checks_parse_and_one_series_per_proxy() {
    let prom = client(&server().url);
    let age = Duration::from_secs(300);
    let p = policy(
        Duration::from_secs(30),
        &[
            signal("good", &format!("max by (channel_id) ({BW})"), age),
            signal("dup", BW, age),
            signal(
                "broken",
                "max by (channel_id) (qce_qaap_outbandwidth_max",
                age,
            ),
            signal("unlabeled", &format!("sum({BW})"), age),
            signal("empty", "no_such_metric", age),
        ],
    );
    let problems = prom
        .check_queries_at(&[p], Some(Timestamp::from_secs(END - 1800)))
        .await
        .unwrap();
    let by_signal: BTreeMap<&str, (&Severity, &str)> = problems
        .iter()
        .map(|p| (p.signal.as_str(), (&p.severity, p.message.as_str())))
        .collect();
    assert_eq!(
        by_signal.keys().copied().collect::<Vec<_>>(),
        ["broken", "dup", "empty", "unlabeled"],
        "{problems:#?}"
    );
    assert_eq!(by_signal["broken"].0, &Severity::Error);
    assert!(
        by_signal["broken"].1.contains("1:47: parse error"),
        "{}",
        by_signal["broken"].1
    );
    assert!(
        by_signal["dup"].1.contains("link-dup00007 (2 series)"),
        "{}",
        by_signal["dup"].1
    );
    assert!(
        by_signal["unlabeled"]
            .1
            .contains("carry no `channel_id` label")
    );
    assert_eq!(by_signal["empty"].0, &Severity::Warning);
    let d = problems[0].to_diagnostic();
    assert_eq!(d.file, std::path::PathBuf::from("web"));
    assert!(
        d.message
            .starts_with(&format!("signal `{}`: ", problems[0].signal))
    );

    // The blocking form `validate` uses, default options, the server's own clock: the
    // backfilled data is long stale there, so nothing can be checked beyond parsing.
    let url = server().url.clone();
    let problems = tokio::task::spawn_blocking(move || {
        let p = policy(
            Duration::from_secs(30),
            &[
                signal("bandwidth", BW, age),
                signal("broken", "rate(qce_qaap_connum_max)", age),
            ],
        );
        check_policy_queries_blocking(&url, &[p])
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(problems[0].signal, "bandwidth");
    assert_eq!(problems[0].severity, Severity::Warning);
    assert_eq!(problems[1].signal, "broken");
    assert!(
        problems[1].message.contains("expected type range vector"),
        "{}",
        problems[1].message
    );

    let down = Prometheus::new("http://127.0.0.1:1", quick_opts()).unwrap();
    let err = down
        .check_queries_at(&[plain_policy(age)], None)
        .await
        .unwrap_err();
    assert!(err.is_environment(), "{err}");
}
